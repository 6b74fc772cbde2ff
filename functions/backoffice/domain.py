"""Admin API domain: input parsing, status groups, pairing semantics, response assembly.

Pure functions over plain rows (mappings) from ``repository``; nothing here touches the
database or imports SQLAlchemy, so the HTTP handler imports it at module level.

* **ids** (``tx_id``, ``order_id``, ``wallet_id``): 1-64 characters ``[A-Za-z0-9._:-]``,
  starting with a letter or digit — the same rule the consumer applies to change events.
  Anything else is a 422.
* **status_group** comes from ``BACKOFFICE_STATUS_GROUPS``, a JSON object of group → raw
  statuses, e.g. ``{"SUCCESS": ["SETTLED"], "FAIL": ["FAILED"], "IN_PROGRESS": ["PENDING"]}``.
  Until it is configured every status maps to ``UNKNOWN`` (the seed's interim decision); the
  raw ``status`` is always returned as stored.
* **pairing_status** of an entry: its payment order's pair (``COMPLETE``: exactly one live
  PAYMENT and one live RECEIVE leg; ``INCOMPLETE``: one side missing so far; ``UNKNOWN``: more
  than one leg on a side, which the seed leaves undefined). An entry that is no double-entry
  leg (no ``related_id``, a ``related_type`` other than PAYMENT_ORDER, a type other than
  PAYMENT/RECEIVE) is ``UNKNOWN``; so is an order without any leg yet.
* **related_type**: stored value, else ``PAYMENT_ORDER`` when the order is known, else
  ``UNKNOWN`` (seed 3.5).
* **data_lag_sec**: now - the newest source commit time applied, taking the staler of the
  two source tables — an upper bound on how far the store is behind (it also grows while
  the source is idle). ``null`` before anything was synced.
* **cursors** are opaque (base64url JSON), bound to their endpoint; malformed → 422.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from opsdeck import cursor
from opsdeck.errors import ConfigError, InvalidInput
from opsdeck.params import TIMESTAMP_EXAMPLE, parse_timestamp
from opsdeck.settings import from_env

from .changes import ID_PATTERN

READ_ROLE = "ADMIN_READ"
AUDIT_ROLE = "ADMIN_AUDIT"
GROUPS = ("SUCCESS", "FAIL", "IN_PROGRESS")
UNKNOWN = "UNKNOWN"
PAIR_LEG_TYPES = ("PAYMENT", "RECEIVE")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
AUDIT_OUTCOMES = ("ok", "not_found", "invalid", "unauthenticated", "forbidden", "error")
TARGET_TYPES = ("tx", "payment_order", "wallet", "audit")


class BackofficeSettings(BaseModel):
    """``BACKOFFICE_*`` environment variables."""

    status_groups: str = ""


# ----------------------------------------------------------------- status groups


@functools.cache
def _groups(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError("BACKOFFICE_STATUS_GROUPS is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError("BACKOFFICE_STATUS_GROUPS must be an object of group -> [statuses]")
    mapping: dict[str, str] = {}
    for group, statuses in data.items():
        if group not in GROUPS:
            raise ConfigError(
                f"BACKOFFICE_STATUS_GROUPS: unknown group {group!r} (one of {', '.join(GROUPS)})"
            )
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise ConfigError(f"BACKOFFICE_STATUS_GROUPS: {group} must list statuses as strings")
        for status in statuses:
            if status in mapping and mapping[status] != group:
                raise ConfigError(f"BACKOFFICE_STATUS_GROUPS: status {status!r} is in two groups")
            mapping[status] = group
    return mapping


def status_groups() -> dict[str, str]:
    """Raw status → group, from ``BACKOFFICE_STATUS_GROUPS`` (empty until configured)."""
    return _groups(from_env(BackofficeSettings, prefix="BACKOFFICE_").status_groups)


def status_group(status: str | None, groups: Mapping[str, str]) -> str:
    return groups.get(status, UNKNOWN) if status else UNKNOWN


# ------------------------------------------------------------------------ input


def parse_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidInput(f"{name} is malformed: 1-64 characters [A-Za-z0-9._:-], starting alphanumeric")
    return value


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,4}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer within 1..{MAX_LIMIT}")
    return int(value)


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 timestamp (``opsdeck.params.parse_timestamp``: what the document states)."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an RFC 3339 timestamp such as {TIMESTAMP_EXAMPLE}") from None


def parse_choice(value: str | None, name: str, choices: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if value not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}")
    return value


def parse_text(value: str | None, name: str, max_length: int = 200) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{name} is malformed")
    return value


def wallet_cursor(value: str | None) -> tuple[datetime, str] | None:
    """``(created_at, tx_id)`` after which the next wallet page starts."""
    position = cursor.decode(value, "w")
    if position is None:
        return None
    try:
        created_us, tx_id = position
        created = datetime.fromtimestamp(int(created_us) / 1e6, UTC)
        if not isinstance(created_us, int) or not ID_PATTERN.match(tx_id):
            raise ValueError
    except (ValueError, TypeError, OverflowError, OSError):
        raise InvalidInput("cursor is malformed") from None
    return created, tx_id


def audit_cursor(value: str | None) -> int | None:
    position = cursor.decode(value, "a")
    if position is None:
        return None
    if len(position) != 1 or not isinstance(position[0], int) or position[0] < 1:
        raise InvalidInput("cursor is malformed")
    return position[0]


# ----------------------------------------------------------------------- output


def iso(value: datetime | str | None) -> str | None:
    """UTC ISO 8601 with microseconds and ``Z`` — the format ``bo.utc_text`` renders in SQL."""
    if value is None or isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_view(row: Mapping[str, Any], groups: Mapping[str, str], *, order_known: bool, prefix: str = ""):
    """One ledger entry as the API shows it (``prefix``: the column prefix in a joined row)."""
    related_type = row[prefix + "related_type"]
    if related_type is None:
        related_type = "PAYMENT_ORDER" if order_known else UNKNOWN
    status = row[prefix + "status"]
    return {
        "tx_id": row[prefix + "tx_id"],
        "wallet_id": row[prefix + "wallet_id"],
        "type": row[prefix + "type"],
        "amount": row[prefix + "amount"],
        "currency": row[prefix + "currency"],
        "status": status,
        "status_group": status_group(status, groups),
        "related_id": row[prefix + "related_id"],
        "related_type": related_type,
        "created_at": iso(row[prefix + "created_at"]),
        "updated_at": iso(row[prefix + "updated_at"]),
        "version": row[prefix + "version"],
        "synced_at": iso(row[prefix + "synced_at"]),
    }


def order_view(row: Mapping[str, Any], groups: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    status = row[prefix + "status"]
    return {
        "order_id": row[prefix + "order_id"],
        "status": status,
        "status_group": status_group(status, groups),
        "amount": row[prefix + "amount"],
        "currency": row[prefix + "currency"],
        "payer_wallet_id": row[prefix + "payer_wallet_id"],
        "payee_wallet_id": row[prefix + "payee_wallet_id"],
        "created_at": iso(row[prefix + "created_at"]),
        "updated_at": iso(row[prefix + "updated_at"]),
        "version": row[prefix + "version"],
        "synced_at": iso(row[prefix + "synced_at"]),
    }


def is_pair_leg(entry: Mapping[str, Any]) -> bool:
    return (
        entry["related_id"] is not None
        and entry["type"] in PAIR_LEG_TYPES
        and entry["related_type"] in (None, "PAYMENT_ORDER")
    )


def tx_view(row: Mapping[str, Any], groups: Mapping[str, str]) -> dict[str, Any]:
    """``GET /admin/tx/{tx_id}`` from the joined row of the view ``bo.admin_tx_search``."""
    order_known = row["o_order_id"] is not None
    entry = entry_view(row, groups, order_known=order_known)
    leg = is_pair_leg(row)
    pairing = (row["pairing_status"] or UNKNOWN) if leg else UNKNOWN
    paired = None
    if leg and pairing == "COMPLETE" and row["q_tx_id"] is not None:
        paired = entry_view(row, groups, order_known=order_known, prefix="q_")
    legs = {entry["type"]: entry, **({paired["type"]: paired} if paired else {})}
    order = order_view(row, groups, prefix="o_") if order_known else None
    payer = legs["PAYMENT"]["wallet_id"] if "PAYMENT" in legs else (order or {}).get("payer_wallet_id")
    receiver = legs["RECEIVE"]["wallet_id"] if "RECEIVE" in legs else (order or {}).get("payee_wallet_id")
    return {
        "tx_id": entry["tx_id"],
        "entry": entry,
        "pairing_status": pairing,
        "paired_tx_id": paired["tx_id"] if paired else None,
        "paired_entry": paired,
        "payer_wallet_id": payer,
        "receiver_wallet_id": receiver,
        "payment_order": order,
        "data_lag_sec": row["data_lag_sec"],
        "as_of": row["as_of"],
    }


def payment_order_view(
    order_id: str,
    order: Mapping[str, Any] | None,
    entries: list[Mapping[str, Any]],
    pair: Mapping[str, Any] | None,
    fresh: Mapping[str, Any],
    groups: Mapping[str, str],
) -> dict[str, Any]:
    """``GET /admin/payment-orders/{order_id}``: the order, its entries and their pairing."""
    order_known = order is not None
    return {
        "order_id": order_id,
        "payment_order": order_view(order, groups) if order is not None else None,
        "entries": [entry_view(e, groups, order_known=order_known) for e in entries],
        "pairing_status": pair["pairing_status"] if pair is not None else UNKNOWN,
        "payment_tx_id": pair["payment_tx_id"] if pair is not None else None,
        "receive_tx_id": pair["receive_tx_id"] if pair is not None else None,
        "pair_first_seen_at": pair["first_seen_at"] if pair is not None else None,
        "pair_completed_at": pair["completed_at"] if pair is not None else None,
        "data_lag_sec": fresh["data_lag_sec"],
        "as_of": fresh["as_of"],
    }


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"],
        "request_id": row["request_id"],
        "actor": row["actor"],
        "actor_roles": row["actor_roles"].split() if row["actor_roles"] else [],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "outcome": row["outcome"],
        "status": row["status"],
        "result_count": row["result_count"],
        "reason": row["reason"],
        "ip": row["ip"],
        "user_agent": row["user_agent"],
    }
