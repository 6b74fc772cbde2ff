"""Property: any delivery of a change stream, in any batch split, ends in the reference state.

Random OLTP streams (``OltpSimulator``: creates, status updates, deletes of voided legs; with
and without row versions / source positions) are delivered with duplicates and reordering,
poison records are mixed in, and the whole delivery is fed through ``consumer.handler`` in
random batch splits. Afterwards the read store must equal what a deliberately simple
reference model computes — the LWW rule of docs/backoffice.md written out independently —
and, whenever the stream carries versions or source positions, the OLTP source's own final
rows too (convergence). Poison records, and only they, are reported as batch item failures.
Seeded ``random`` keeps every case reproducible (the seed is in the test id).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from sqlalchemy import text

from functions.backoffice.simulator import POISON_KINDS, OltpSimulator, deliver, poison
from tests.integration.backoffice.helpers import consume, records

KEYS = {"ledger_entries": "tx_id", "payment_orders": "order_id"}


# ------------------------------------------------------------- reference model


def reference_key(change: dict[str, Any], sent_ms: int) -> tuple[int, int, int, int]:
    """The documented total order, written out independently of the implementation."""
    delete = change["op"] == "d"
    image = change["before"] if delete else change["after"]
    version = image.get("version")
    ts = change["source"].get("ts_ms")
    lsn = change["source"].get("lsn") or 0
    if delete and version is None:
        return (3, ts or 0, lsn, 1)
    if version is not None:
        return (2, version, lsn, int(delete))
    if ts is not None:
        return (1, ts, lsn, int(delete))
    return (0, sent_ms, change.get("ts_ms") or 0, int(delete))


def reference_state(delivered: list[tuple[int, Any]]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """(table, key) → the winning row image, or None for a tombstone."""
    best: dict[tuple[str, str], tuple[tuple, dict | None]] = {}
    for sent_ms, change in delivered:
        if isinstance(change, str):
            continue  # poison
        table = change["source"]["table"]
        image = change["before"] if change["op"] == "d" else change["after"]
        key = (table, str(image[KEYS[table]]))
        k = reference_key(change, sent_ms)
        if key not in best or k > best[key][0]:
            best[key] = (k, None if change["op"] == "d" else image)
    return {key: image for key, (_, image) in best.items()}


def reference_pairs(
    state: dict[tuple[str, str], dict | None],
) -> dict[str, tuple[str, str | None, str | None]]:
    legs: dict[str, dict[str, list[str]]] = {}
    for (table, tx_id), row in state.items():
        if table != "ledger_entries" or row is None or row.get("related_id") is None:
            continue
        if row["type"] not in ("PAYMENT", "RECEIVE") or row.get("related_type") not in (
            None,
            "PAYMENT_ORDER",
        ):
            continue
        legs.setdefault(row["related_id"], {"PAYMENT": [], "RECEIVE": []})[row["type"]].append(tx_id)
    out = {}
    for order_id, sides in legs.items():
        p, r = len(sides["PAYMENT"]), len(sides["RECEIVE"])
        status = "COMPLETE" if (p, r) == (1, 1) else "UNKNOWN" if p > 1 or r > 1 else "INCOMPLETE"
        out[order_id] = (status, min(sides["PAYMENT"], default=None), min(sides["RECEIVE"], default=None))
    return out


# ----------------------------------------------------------------------- store


def store_state(conn) -> dict[tuple[str, str], dict[str, Any] | None]:
    out: dict[tuple[str, str], dict[str, Any] | None] = {}
    for table, key in KEYS.items():
        for row in conn.execute(text(f"SELECT * FROM bo.{table}")).mappings():
            out[(table, row[key])] = None if row["deleted_at"] is not None else dict(row)
    return out


def store_pairs(conn) -> dict[str, tuple[str, str | None, str | None]]:
    rows = conn.execute(
        text(
            "SELECT payment_order_id, pairing_status, payment_tx_id, receive_tx_id "
            "FROM bo.payment_ledger_pairs"
        )
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


FIELDS = ("status", "amount", "currency", "version", "related_id", "wallet_id", "type")


def comparable(row: dict[str, Any] | None) -> tuple | None:
    if row is None:
        return None
    return tuple(row.get(f) for f in FIELDS)


# ------------------------------------------------------------------------ test

CASES = [
    (seed, versioned, positions)
    for seed, (versioned, positions) in enumerate(
        [(True, True), (False, True), (True, False), (False, False)] * 5, start=1
    )
]


@pytest.mark.parametrize(("seed", "versioned", "positions"), CASES, ids=lambda v: str(v))
def test_random_deliveries_in_random_batches_end_in_the_reference_state(db, seed, versioned, positions):
    rng = random.Random(seed)
    sim = OltpSimulator(
        seed=seed, versioned=versioned, positions=positions, wallets=12, fail_rate=0.4, void_rate=0.6
    )
    stream = sim.run(rng.randint(5, 40), concurrency=rng.randint(1, 10))
    delivery: list[Any] = deliver(
        stream, rng=rng, duplicate_rate=rng.choice([0.0, 0.1, 0.3]), reorder_window=rng.choice([1, 5, 50])
    )
    for n in range(rng.randint(0, 4)):
        delivery.insert(rng.randrange(len(delivery) + 1), poison(rng.choice(POISON_KINDS), n=n))

    failed: list[str] = []
    position = 0
    while position < len(delivery):
        size = rng.choice([1, 2, 3, 7, 10, 25, 100])
        batch = delivery[position : position + size]
        failed += consume(records(batch, start=position))
        position += size

    poison_ids = sorted(f"m{i}" for i, item in enumerate(delivery) if isinstance(item, str))
    assert sorted(failed) == poison_ids

    sent = [(1_767_225_900_000 + i, item) for i, item in enumerate(delivery)]
    expected = reference_state(sent)
    actual = store_state(db)
    assert set(actual) == set(expected)
    for key in expected:
        assert comparable(actual[key]) == comparable(_normalise(expected[key])), key
    assert store_pairs(db) == reference_pairs(expected)

    if versioned or positions:  # converged to the OLTP source itself
        for (table, key), row in actual.items():
            truth = sim.rows.get((table, key))
            assert comparable(row) == comparable(_normalise(truth)), (table, key)


def _normalise(image: dict[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {**image, "version": image.get("version")}


def test_the_stream_is_realistic():
    """The generator produces what the property relies on: legs, updates, deletes, interleaving."""
    sim = OltpSimulator(seed=3, fail_rate=0.5, void_rate=1.0)
    stream = sim.run(30, concurrency=6)
    ops = {e["op"] for e in stream}
    assert ops == {"c", "u", "d"}
    order_ids = [e["after"]["order_id"] for e in stream if e["source"]["table"] == "payment_orders"]
    assert order_ids != sorted(order_ids)  # lifecycles interleave
    lsns = [e["source"]["lsn"] for e in stream]
    assert lsns == sorted(lsns) and len(set(lsns)) == len(lsns)
    legs = [e["after"] for e in stream if e["source"]["table"] == "ledger_entries" and e["op"] == "c"]
    assert {leg["type"] for leg in legs} == {"PAYMENT", "RECEIVE"}
    assert json.loads(json.dumps(stream)) == stream
