"""The change-event contract: validation, normalisation and the total LWW order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from functions.backoffice import changes

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


def parse(body: dict) -> changes.Change:
    return changes.parse(json.dumps(body))


def change(op="c", row=None, **source):
    return {
        "op": op,
        "before": None,
        "after": row or dict(ROW),
        "source": {"table": "ledger_entries", **source},
    }


def test_ids_amounts_codes_and_times_are_normalised():
    c = parse(change(ts_ms=1))
    row = changes.image(c)
    assert c["source"]["table"] == "ledger_entries"
    assert (row["tx_id"], row["related_id"], row["amount"]) == ("42", "7", 1500)
    assert (row["type"], row["currency"]) == ("PAYMENT", "KRW")
    assert row["created_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert "customer_email" not in row


def test_the_image_an_operation_does_not_use_is_not_read():
    update = parse({**change(), "before": {"tx_id": "not an id!", "amount": "lots"}})
    assert changes.image(update)["tx_id"] == "42"
    delete = parse(
        {"op": "d", "before": {"tx_id": 42}, "after": {"junk": 1}, "source": {"table": "ledger_entries"}}
    )
    assert changes.image(delete) == {"tx_id": "42"} and delete["op"] == "d"


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
    created = changes.image(parse(change(row={**ROW, "created_at": value})))["created_at"]
    assert created == expected and created.utcoffset() is not None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (change(row={**ROW, "amount": 12.5}), "amount"),
        (change(row={**ROW, "amount": 2**63}), "amount"),
        (change(row={**ROW, "currency": "WON!"}), "currency"),
        (change(row={**ROW, "tx_id": "has space"}), "tx_id"),
        (change(row={**ROW, "tx_id": 1.0}), "an id is"),  # 1.0 and 1 must not be two keys
        (change(row={**ROW, "related_id": True}), "related_id"),
        (change(row={**ROW, "created_at": "yesterday"}), "a timestamp is"),
        (change(row={**ROW, "version": -1}), "version"),
        (change(row={k: v for k, v in ROW.items() if k != "wallet_id"}), "wallet_id"),
        ({**change(), "op": "x"}, "found using 'op'"),
        ({**change(), "after": None}, "after"),
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
    assert changes.image(c)["order_id"] == "po-1" and c["source"]["table"] == "payment_orders"
    assert changes.image(c)["currency"] == "USD"


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
    assert changes.order_key(parse(body), ingested_ms=1234) == key


def test_the_order_is_total_and_deletes_win_ties():
    update = parse(change(row={**ROW, "version": 3}))
    delete = parse({"op": "d", "before": {"tx_id": 42, "version": 3}, "source": {"table": "ledger_entries"}})
    assert changes.order_key(delete, 0) > changes.order_key(update, 0)
    final = parse({"op": "d", "before": {"tx_id": 42}, "source": {"table": "ledger_entries"}})
    newest_update = parse(change(row={**ROW, "version": 10**12}, ts_ms=2**40))
    assert changes.order_key(final, 0) > changes.order_key(newest_update, 0)  # a versionless delete is final
