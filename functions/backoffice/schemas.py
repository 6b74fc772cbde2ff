"""The bodies of the backoffice admin API, for its OpenAPI document only.

The routes return ``JSONResponse``s assembled by ``domain``; these models describe them (the
contract test checks every response against them). They are imported when the document is built
(``opsdeck.openapi.body``), never at cold start.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

#: the tx / payment order / wallet the contract data (``demo.contract``) holds
EXAMPLE_TX, EXAMPLE_ORDER, EXAMPLE_WALLET = "tx-0000000001", "po-00000001", "w-00011"

_TS = "2026-01-01T00:00:00.045000Z"
_ENTRY = {
    "tx_id": EXAMPLE_TX,
    "wallet_id": EXAMPLE_WALLET,
    "type": "PAYMENT",
    "amount": 405,
    "currency": "USD",
    "status": "SETTLED",
    "status_group": "UNKNOWN",
    "related_id": EXAMPLE_ORDER,
    "related_type": "PAYMENT_ORDER",
    "created_at": "2026-01-01T00:00:00.020000Z",
    "updated_at": _TS,
    "version": 2,
    "synced_at": "2026-01-01T00:00:01.100000Z",
}
_PAIRED = {**_ENTRY, "tx_id": "tx-0000000002", "wallet_id": "w-00005", "type": "RECEIVE"}
_ORDER = {
    "order_id": EXAMPLE_ORDER,
    "status": "SETTLED",
    "status_group": "UNKNOWN",
    "amount": 405,
    "currency": "USD",
    "payer_wallet_id": EXAMPLE_WALLET,
    "payee_wallet_id": "w-00005",
    "created_at": "2026-01-01T00:00:00.000000Z",
    "updated_at": _TS,
    "version": 3,
    "synced_at": "2026-01-01T00:00:01.100000Z",
}
StatusGroup = Literal["SUCCESS", "FAIL", "IN_PROGRESS", "UNKNOWN"]
Pairing = Literal["COMPLETE", "INCOMPLETE", "UNKNOWN"]


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class Entry(BaseModel):
    model_config = _example(_ENTRY)

    tx_id: str
    wallet_id: str | None
    type: str | None
    amount: int | None
    currency: str | None
    status: str | None
    status_group: StatusGroup
    related_id: str | None
    related_type: str
    created_at: str | None
    updated_at: str | None
    version: int | None
    synced_at: str | None


class PaymentOrder(BaseModel):
    model_config = _example(_ORDER)

    order_id: str
    status: str | None
    status_group: StatusGroup
    amount: int | None
    currency: str | None
    payer_wallet_id: str | None
    payee_wallet_id: str | None
    created_at: str | None
    updated_at: str | None
    version: int | None
    synced_at: str | None


class Freshness(BaseModel):
    data_lag_sec: float | None
    as_of: str | None


class TxOut(Freshness):
    model_config = _example(
        {
            "tx_id": EXAMPLE_TX,
            "entry": _ENTRY,
            "pairing_status": "COMPLETE",
            "paired_tx_id": "tx-0000000002",
            "paired_entry": _PAIRED,
            "payer_wallet_id": EXAMPLE_WALLET,
            "receiver_wallet_id": "w-00005",
            "payment_order": _ORDER,
            "data_lag_sec": 1.25,
            "as_of": _TS,
        }
    )

    tx_id: str
    entry: Entry
    pairing_status: Pairing
    paired_tx_id: str | None
    paired_entry: Entry | None
    payer_wallet_id: str | None
    receiver_wallet_id: str | None
    payment_order: PaymentOrder | None


class PaymentOrderOut(Freshness):
    model_config = _example(
        {
            "order_id": EXAMPLE_ORDER,
            "payment_order": _ORDER,
            "entries": [_ENTRY, _PAIRED],
            "pairing_status": "COMPLETE",
            "payment_tx_id": EXAMPLE_TX,
            "receive_tx_id": "tx-0000000002",
            "pair_first_seen_at": "2026-01-01T00:00:01.100000Z",
            "pair_completed_at": "2026-01-01T00:00:01.100000Z",
            "data_lag_sec": 1.25,
            "as_of": _TS,
        }
    )

    order_id: str
    payment_order: PaymentOrder | None
    entries: list[Entry]
    pairing_status: Pairing
    payment_tx_id: str | None
    receive_tx_id: str | None
    pair_first_seen_at: str | None
    pair_completed_at: str | None


class WalletPage(Freshness):
    model_config = _example(
        {
            "wallet_id": EXAMPLE_WALLET,
            "items": [_ENTRY],
            "next_cursor": None,
            "limit": 20,
            "data_lag_sec": 1.25,
            "as_of": _TS,
        }
    )

    wallet_id: str
    items: list[Entry]
    next_cursor: str | None
    limit: int


class AuditRecord(BaseModel):
    id: int
    at: str
    request_id: str | None
    actor: str | None
    actor_roles: list[str]
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    status: int | None
    result_count: int | None
    reason: str | None
    ip: str | None
    user_agent: str | None


class AuditPage(BaseModel):
    model_config = _example(
        {
            "items": [
                {
                    "id": 7,
                    "at": "2026-01-05T09:30:00.123456Z",
                    "request_id": "c2FtcGxlLWJhY2tvZmZpY2U=",
                    "actor": "ops-alice",
                    "actor_roles": ["ADMIN_READ"],
                    "action": "GET /backoffice/admin/tx/{tx_id}",
                    "target_type": "tx",
                    "target_id": EXAMPLE_TX,
                    "outcome": "ok",
                    "status": 200,
                    "result_count": 1,
                    "reason": None,
                    "ip": "203.0.113.7",
                    "user_agent": "curl/8.5.0",
                }
            ],
            "next_cursor": None,
            "limit": 20,
        }
    )

    items: list[AuditRecord]
    next_cursor: str | None
    limit: int
