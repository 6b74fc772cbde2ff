"""opsdeck.queue.consume: validate, bulk apply, isolate bad records, report batchItemFailures."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, MetaData, Table, Text, text

from localcloud.events import sqs_event, sqs_record
from opsdeck.db import bulk_upsert
from opsdeck.queue import consume

ledger = Table(
    "ledger",
    MetaData(schema="pg_temp"),
    Column("id", Text, primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
)


class Change(BaseModel):
    id: str = Field(min_length=1)
    amount: int
    version: int = 1


class Recorder:
    """apply_batch that counts statements and writes through the bulk upsert helper."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, conn, items):
        self.calls.append(len(items))
        bulk_upsert(conn, ledger, [m.model_dump() for _, m in items], key=["id"], version=["version"])


@pytest.fixture
def table(db):
    # amount must be non-negative: a record breaking that fails only in the database.
    db.execute(
        text(
            "CREATE TEMP TABLE ledger (id text PRIMARY KEY, amount bigint NOT NULL CHECK (amount >= 0), "
            "version bigint NOT NULL)"
        )
    )
    return db


def stored(conn) -> dict[str, int]:
    return dict(conn.execute(text("SELECT id, amount FROM pg_temp.ledger")).all())


def event(*bodies, queue="ledger-changes", groups=None):
    return sqs_event(
        sqs_record(b, queue_name=queue, message_id=f"m{i}", group_id=(groups[i] if groups else None))
        for i, b in enumerate(bodies)
    )


def failures(result) -> list[str]:
    return sorted(f["itemIdentifier"] for f in result["batchItemFailures"])


def test_all_valid_records_are_applied_in_one_statement(table):
    apply = Recorder()
    result = consume(event(*({"id": f"t{i}", "amount": i} for i in range(50))), Change, apply)
    assert result == {"batchItemFailures": []}
    assert apply.calls == [50]
    assert len(stored(table)) == 50


def test_invalid_records_fail_alone(table):
    apply = Recorder()
    result = consume(
        event(
            {"id": "a", "amount": 1},
            "{not json",
            {"id": "", "amount": 2},
            {"id": "b", "amount": "x"},
            {"id": "c", "amount": 3},
        ),
        Change,
        apply,
    )
    assert failures(result) == ["m1", "m2", "m3"]
    assert apply.calls == [2]
    assert stored(table) == {"a": 1, "c": 3}


def test_a_record_the_database_refuses_is_isolated_and_its_neighbours_applied(table):
    apply = Recorder()
    bodies = [{"id": f"t{i}", "amount": -1 if i == 37 else i} for i in range(64)]
    result = consume(event(*bodies), Change, apply)
    assert failures(result) == ["m37"]
    assert len(stored(table)) == 63 and "t37" not in stored(table)
    # bisection: far fewer statements than one per record
    assert len(apply.calls) <= 2 * 7 + 1


def test_every_record_bad_is_reported_not_raised(table):
    result = consume(event("[]", "null", "{}"), Change, Recorder())
    assert failures(result) == ["m0", "m1", "m2"]


def test_duplicates_and_stale_versions_converge(table):
    bodies = [
        {"id": "a", "amount": 5, "version": 5},
        {"id": "a", "amount": 3, "version": 3},
        {"id": "a", "amount": 5, "version": 5},
    ]
    assert consume(event(*bodies), Change, Recorder())["batchItemFailures"] == []
    assert (
        consume(event({"id": "a", "amount": 4, "version": 4}), Change, Recorder())["batchItemFailures"] == []
    )
    assert stored(table) == {"a": 5}


def test_fifo_failure_blocks_the_rest_of_its_group_only(table):
    apply = Recorder()
    bodies = [
        {"id": "g1-a", "amount": 1},
        {"id": "g1-b", "amount": -1},  # refused by the database
        {"id": "g1-c", "amount": 3},  # must not be applied before g1-b
        {"id": "g2-a", "amount": 4},
        "garbage",  # g3: invalid
        {"id": "g3-b", "amount": 6},  # after a failure in g3
    ]
    result = consume(
        event(*bodies, queue="ledger-changes.fifo", groups=["g1", "g1", "g1", "g2", "g3", "g3"]),
        Change,
        apply,
    )
    assert failures(result) == ["m1", "m2", "m4", "m5"]
    assert stored(table) == {"g1-a": 1, "g2-a": 4}


def test_result_is_what_lambda_expects(table):
    result = consume(event("oops"), Change, Recorder())
    assert json.loads(json.dumps(result)) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
