"""The change-event contract: validation, normalisation and the total LWW order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from functions.backoffice.changes import Change, LedgerChange, OrderChange

ROW = {
    "tx_id": 42,
    "wallet_id": "w-1",
    "type": "payment",
    "amount": "1500",
    "currency": "krw",
    "status": "PENDING",
    "related_id": 7,
    "created_at": "2026-01-01T09:00:00+09:00",
    "customer_email": "someone@example.com",  # not part of the contract: dropped
}


def parse(body: dict) -> LedgerChange | OrderChange:
    return Change.model_validate_json(json.dumps(body)).root


def change(op="c", row=None, **source):
    return {
        "op": op,
        "before": None,
        "after": row or dict(ROW),
        "source": {"table": "ledger_entries", **source},
    }


def test_ids_amounts_codes_and_times_are_normalised():
    c = parse(change(ts_ms=1))
    assert isinstance(c, LedgerChange)
    assert (c.key, c.row.related_id, c.row.amount) == ("42", "7", 1500)
    assert (c.row.type, c.row.currency) == ("PAYMENT", "KRW")
    assert c.row.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert "customer_email" not in c.row.__dict__


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_767_225_600, datetime(2026, 1, 1, tzinfo=UTC)),  # seconds
        (1_767_225_600_000, datetime(2026, 1, 1, tzinfo=UTC)),  # milliseconds
        (1_767_225_600_000_000, datetime(2026, 1, 1, tzinfo=UTC)),  # microseconds (Debezium)
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),  # naive = UTC
    ],
)
def test_timestamps(value, expected):
    assert parse(change(row={**ROW, "created_at": value})).row.created_at == expected


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (change(row={**ROW, "amount": 12.5}), "amount"),
        (change(row={**ROW, "amount": 2**63}), "amount"),
        (change(row={**ROW, "currency": "WON!"}), "currency"),
        (change(row={**ROW, "tx_id": "has space"}), "tx_id"),
        (change(row={**ROW, "version": -1}), "version"),
        (change(row={k: v for k, v in ROW.items() if k != "wallet_id"}), "wallet_id"),
        ({**change(), "op": "x"}, "op"),
        ({**change(), "after": None}, "needs the 'after' image"),
        ({"op": "d", "before": None, "after": None, "source": {"table": "ledger_entries"}}, "before"),
        ({"op": "d", "before": {"wallet_id": "w"}, "source": {"table": "ledger_entries"}}, "tx_id"),
        ({**change(), "source": {"table": "refunds"}}, "source.table must be"),
        ({**change(), "source": {"table": "ledger_entries", "lsn": -5}}, "lsn"),
    ],
)
def test_invalid_changes_name_the_problem(body, where):
    with pytest.raises(ValidationError) as info:
        parse(body)
    assert where in str(info.value)


def test_orders_are_their_own_shape():
    c = parse(
        {
            "op": "u",
            "after": {
                "order_id": "po-1",
                "status": "SETTLED",
                "amount": 10,
                "currency": "usd",
                "created_at": 0,
            },
            "source": {"table": "payment_orders", "ts_ms": 5},
        }
    )
    assert isinstance(c, OrderChange) and c.key == "po-1" and c.table == "payment_orders"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (change(row={**ROW, "version": 3}, ts_ms=10, lsn=99), (2, 3, 99, 0)),
        (change(ts_ms=10, lsn=99), (1, 10, 99, 0)),
        (change(ts_ms=10), (1, 10, 0, 0)),
        ({**change(), "ts_ms": 777}, (0, 1234, 777, 0)),  # ingestion time, then capture time
        (
            {
                "op": "d",
                "before": {"tx_id": 42},
                "source": {"table": "ledger_entries", "ts_ms": 10, "lsn": 7},
            },
            (3, 10, 7, 1),
        ),
        (
            {
                "op": "d",
                "before": {"tx_id": 42, "version": 3},
                "source": {"table": "ledger_entries", "lsn": 7},
            },
            (2, 3, 7, 1),
        ),
    ],
)
def test_order_key(body, key):
    assert parse(body).order_key(ingested_ms=1234) == key


def test_the_order_is_total_and_deletes_win_ties():
    update = parse(change(row={**ROW, "version": 3}))
    delete = parse({"op": "d", "before": {"tx_id": 42, "version": 3}, "source": {"table": "ledger_entries"}})
    assert delete.order_key(0) > update.order_key(0)
    final = parse({"op": "d", "before": {"tx_id": 42}, "source": {"table": "ledger_entries"}})
    newest_update = parse(change(row={**ROW, "version": 10**12}, ts_ms=2**40))
    assert final.order_key(0) > newest_update.order_key(0)  # a versionless delete is final
