"""backoffice-consumer through its Lambda handler: validation, LWW, tombstones, pairing, metrics."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import text

from functions.backoffice import consumer
from functions.backoffice.simulator import OltpSimulator, deliver, poison
from localcloud.events import sqs_event
from tests.integration.backoffice.helpers import consume, records
from tests.support import LambdaContext, as_admin, load_event

T0 = 1_767_225_600_000


def ledger(
    tx_id, *, version=None, status="PENDING", op="c", ts=T0, lsn=None, related="po-1", kind="PAYMENT", **extra
):
    row = {
        "tx_id": tx_id,
        "wallet_id": extra.pop("wallet_id", "w-1"),
        "type": kind,
        "amount": extra.pop("amount", 1000),
        "currency": "KRW",
        "status": status,
        "related_id": related,
        "created_at": "2026-01-01T00:00:00Z",
        **extra,
    }
    if version is not None:
        row["version"] = version
    source = {"table": "ledger_entries"}
    if ts is not None:
        source["ts_ms"] = ts
    if lsn is not None:
        source["lsn"] = lsn
    if op == "d":
        return {"op": "d", "before": {"tx_id": tx_id}, "after": None, "source": source}
    return {"op": op, "before": None, "after": row, "source": source}


def stored(conn, tx_id):
    return conn.execute(
        text("SELECT status, version, deleted_at, lww_rank FROM bo.ledger_entries WHERE tx_id = :t"),
        {"t": tx_id},
    ).one_or_none()


def pair(conn, order_id):
    return conn.execute(
        text(
            "SELECT pairing_status, payment_tx_id, receive_tx_id, completed_at "
            "FROM bo.payment_ledger_pairs WHERE payment_order_id = :o"
        ),
        {"o": order_id},
    ).one_or_none()


def test_sample_batch_applies_everything_but_the_poison_record(db, capsys, caplog):
    event = load_event("backoffice-consumer/batch-with-poison.json")
    result = consumer.handler(event, LambdaContext("backoffice-consumer"))
    poison_ids = [
        r["messageId"] for r in event["Records"] if json.loads(r["body"])["after"]["amount"] == "12.50"
    ]
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == poison_ids
    orders = db.execute(text("SELECT order_id, status, version FROM bo.payment_orders")).all()
    assert [(o.status, o.version) for o in orders] == [("SETTLED", 3)]
    legs = db.execute(text("SELECT type, status FROM bo.ledger_entries ORDER BY type")).all()
    assert [(leg.type, leg.status) for leg in legs] == [("PAYMENT", "SETTLED"), ("RECEIVE", "SETTLED")]
    assert pair(db, orders[0].order_id).pairing_status == "COMPLETE"
    logged = [(r.message_id, r.reason) for r in caplog.records if r.getMessage() == "record failed"]
    assert logged == [(poison_ids[0], logged[0][1])]  # the reason is logged with the message id
    assert logged[0][1].startswith("invalid ledger_entries.u.after.amount")
    out = capsys.readouterr().out
    emf = next(json.loads(line) for line in out.splitlines() if '"_aws"' in line)
    assert emf["ChangesInvalid"] == [1.0]
    assert emf["PairsCompleted"] == [1.0]
    assert emf["ChangesWritten"][0] + emf["ChangesSkipped"][0] == 8  # 7 changes + 1 duplicate


def test_last_writer_wins_by_version_in_any_order(db):
    v1, v2, v3 = (ledger("t1", version=v, status=s) for v, s in ((1, "PENDING"), (2, "HELD"), (3, "SETTLED")))
    assert consume(records([v3, v1])) == []
    assert consume(records([v2, v3], start=2)) == []
    row = stored(db, "t1")
    assert (row.status, row.version, row.lww_rank) == ("SETTLED", 3, 2)


def test_without_version_the_source_position_decides(db, capsys):
    late = ledger("t1", status="SETTLED", ts=T0 + 50, lsn=200)
    early = ledger("t1", status="PENDING", ts=T0 + 50, lsn=100)
    assert consume(records([late])) == []
    assert consume(records([early], start=1)) == []
    assert (stored(db, "t1").status, stored(db, "t1").lww_rank) == ("SETTLED", 1)
    assert '"VersionMissing":[1.0]' in capsys.readouterr().out


def test_without_version_and_position_the_ingestion_time_decides(db, capsys):
    first = ledger("t1", status="PENDING", ts=None)
    second = ledger("t1", status="SETTLED", ts=None)
    # sent later = ingested later, whatever the delivery order
    recs = records([first, second])
    assert consume([recs[1]]) == []
    assert consume([recs[0]]) == []
    assert (stored(db, "t1").status, stored(db, "t1").lww_rank) == ("SETTLED", 0)
    out = capsys.readouterr().out
    assert '"OrderedByIngestionTime":[1.0]' in out


def test_duplicates_change_nothing(db):
    change = ledger("t1", version=1)
    assert consume(records([change, change, change])) == []
    before = db.execute(text("SELECT synced_at FROM bo.ledger_entries WHERE tx_id = 't1'")).scalar()
    assert consume(records([change], start=3)) == []
    after = db.execute(text("SELECT synced_at FROM bo.ledger_entries WHERE tx_id = 't1'")).scalar()
    assert before == after  # not even rewritten


def test_a_delete_is_a_tombstone_that_older_updates_cannot_resurrect(db):
    assert (
        consume(records([ledger("t1", version=2, status="SETTLED"), ledger("t2", kind="RECEIVE", version=1)]))
        == []
    )
    assert pair(db, "po-1").pairing_status == "COMPLETE"
    # PK-only delete (default replica identity), then a late, older update and a late create
    assert consume(records([ledger("t1", op="d", ts=T0 + 99)], start=2)) == []
    assert consume(records([ledger("t1", version=1), ledger("t1", version=5, status="LATE")], start=3)) == []
    row = stored(db, "t1")
    assert row.deleted_at is not None and row.lww_rank == 3
    assert pair(db, "po-1").pairing_status == "INCOMPLETE"
    assert pair(db, "po-1").payment_tx_id is None


def test_a_delete_that_arrives_first_still_wins(db):
    assert consume(records([ledger("t9", op="d")])) == []
    assert consume(records([ledger("t9", version=1)], start=1)) == []
    assert stored(db, "t9").deleted_at is not None
    assert pair(db, "po-1") is None  # no live leg, no pair row


def test_pairs_converge_whatever_order_the_legs_arrive_in(db):
    pay = ledger("t1", version=1, kind="PAYMENT", related="po-7")
    rec = ledger("t2", version=1, kind="RECEIVE", related="po-7", wallet_id="w-2")
    assert consume(records([rec])) == []
    assert pair(db, "po-7").pairing_status == "INCOMPLETE"
    assert consume(records([pay], start=1)) == []
    done = pair(db, "po-7")
    assert (done.pairing_status, done.payment_tx_id, done.receive_tx_id) == ("COMPLETE", "t1", "t2")
    assert done.completed_at is not None
    # a third leg on one side makes the pairing ambiguous: UNKNOWN (the seed leaves it undefined)
    assert consume(records([ledger("t3", version=1, kind="PAYMENT", related="po-7")], start=2)) == []
    assert pair(db, "po-7").pairing_status == "UNKNOWN"


def test_moving_an_entry_to_another_order_repairs_both_pairs(db):
    assert (
        consume(
            records(
                [
                    ledger("t1", version=1, related="po-a"),
                    ledger("t2", version=1, kind="RECEIVE", related="po-a"),
                ]
            )
        )
        == []
    )
    assert consume(records([ledger("t2", version=2, kind="RECEIVE", related="po-b")], start=2)) == []
    assert pair(db, "po-a").pairing_status == "INCOMPLETE"
    assert pair(db, "po-b").pairing_status == "INCOMPLETE"


def test_sync_state_and_lag_metric(db, capsys):
    now_ms = int(time.time() * 1000)
    assert consume(records([ledger("t1", version=1, ts=now_ms - 2000)])) == []
    last = db.execute(
        text("SELECT last_source_ts FROM bo.sync_state WHERE stream = 'ledger_entries'")
    ).scalar()
    assert abs(last.timestamp() * 1000 - (now_ms - 2000)) < 1
    emf = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x)
    assert 1900 <= emf["ConsumerLag"][0] < 60_000
    assert emf["OldestIncompletePairAge"][0] >= 0


@pytest.mark.parametrize(
    "kind", ["not-json", "unknown-table", "missing-key", "bad-amount", "update-without-after"]
)
def test_every_poison_kind_fails_alone(db, kind):
    good = ledger("t1", version=1)
    assert consume(records([good, poison(kind), good])) == ["m1"]
    assert stored(db, "t1").version == 1


def test_a_record_the_database_refuses_is_isolated_by_bisection(db):
    # a constraint the read store did not expect (DDL is transactional: rolled back with the test)
    with as_admin(db):  # the runtime role may not alter its tables
        db.execute(
            text("ALTER TABLE bo.ledger_entries ADD CONSTRAINT no_blocked CHECK (wallet_id <> 'blocked')")
        )
    bodies = [
        ledger(f"t{i}", version=1, related=f"po-{i // 2}", kind=("PAYMENT", "RECEIVE")[i % 2])
        for i in range(40)
    ]
    bodies[17] = ledger("t17", version=1, related="po-8", kind="RECEIVE", wallet_id="blocked")
    assert consume(records(bodies)) == ["m17"]
    assert db.execute(text("SELECT count(*) FROM bo.ledger_entries")).scalar() == 39
    assert pair(db, "po-8").pairing_status == "INCOMPLETE"  # the pair work of the failed half was undone
    assert pair(db, "po-7").pairing_status == "COMPLETE"


def test_a_batch_of_10000_is_applied_correctly(db):
    sim = OltpSimulator(seed=10_000)
    events = sim.run(1450)
    delivered = deliver(events, duplicate_rate=0.0, reorder_window=500)[:10_000]
    started = time.perf_counter()
    result = consumer.handler(sqs_event(records(delivered)), LambdaContext("backoffice-consumer", 60))
    elapsed = time.perf_counter() - started
    assert result == {"batchItemFailures": []}
    live = db.execute(text("SELECT count(*) FROM bo.ledger_entries WHERE deleted_at IS NULL")).scalar()
    seen = {
        e["after"]["tx_id"] if e["after"] else e["before"]["tx_id"]
        for e in delivered
        if e["source"]["table"] == "ledger_entries"
    }
    deleted = db.execute(text("SELECT count(*) FROM bo.ledger_entries WHERE deleted_at IS NOT NULL")).scalar()
    assert live + deleted == len(seen)
    assert elapsed < 60  # the function's timeout; the bench measures the real throughput
