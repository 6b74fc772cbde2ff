"""Concurrency is correctness: control calls serialise on the task type's row, and two workers
never both claim one job (real commits, separate connections, threads)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from opsdeck.errors import Conflict


@pytest.fixture
def fresh(committed_db):
    from functions.platform_sync import control

    control.control("start", by="test")  # rows present, running (the fixture truncates afterwards)
    return committed_db


def test_a_control_call_waits_for_the_one_holding_the_row_and_sees_its_result(fresh):
    from functions.platform_sync import control, repository

    outcome: dict[str, object] = {}
    with fresh.connect() as holder:
        tx = holder.begin()
        repository.lock_task_types(holder, ["sync"])  # a concurrent "stop" holds the row

        def resume() -> None:
            try:
                outcome["result"] = control.control("resume", ("sync",), by="second")
            except Conflict as exc:
                outcome["conflict"] = exc.detail

        second = threading.Thread(target=resume)
        second.start()
        time.sleep(0.5)
        assert second.is_alive(), "the second call must wait for the row lock"
        repository.set_state(holder, "sync", "stopped", "first")
        tx.commit()
        second.join(10)
    # it saw the committed stop and refused, instead of resuming from a stale read
    assert "stopped" in str(outcome.get("conflict")), outcome


def _queued_job(fresh) -> str:
    with fresh.begin() as conn:
        platform_id = conn.execute(
            text(
                "INSERT INTO platform_sync.platforms (name, base_url, endpoints, connect_timeout_s, "
                "read_timeout_s) VALUES ('p', 'https://p.example.com', '{}'::jsonb, 1, 1) RETURNING id"
            )
        ).scalar()
        conn.execute(
            text(
                "INSERT INTO platform_sync.jobs (id, platform_id, task_type, trigger, scheduled_for, status) "
                "VALUES ('sync-' || :p || '-20261203T0900Z', :p, 'sync', 'schedule', now(), 'queued')"
            ),
            {"p": platform_id},
        )
    return f"sync-{platform_id}-20261203T0900Z"


def test_two_workers_claiming_the_same_job_one_wins(fresh):
    from functions.platform_sync import repository

    job_id = _queued_job(fresh)
    claimed: list[int] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        with fresh.begin() as conn:
            got, _ = repository.claim(conn, [job_id], 60)
            claimed.append(len(got))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(claimed) == [0, 1]


def test_a_worker_that_waited_for_the_lock_sees_the_claim_committed_meanwhile(fresh):
    """The interleaving that once let both claim: the second worker reads the job as queued,
    waits for the task type lock the first holds, and must not claim once the first commits."""
    from functions.platform_sync import repository

    job_id = _queued_job(fresh)
    second_claimed: list[int] = []
    reasons: list[str] = []
    with fresh.connect() as first:
        tx = first.begin()
        got, _ = repository.claim(first, [job_id], 60)
        assert len(got) == 1

        def second_worker() -> None:
            with fresh.begin() as conn:
                got, skipped = repository.claim(conn, [job_id], 60)
                second_claimed.append(len(got))
                reasons.extend(s.reason for s in skipped)

        second = threading.Thread(target=second_worker)
        second.start()
        time.sleep(0.5)
        assert second.is_alive(), "the second worker must wait for the task type lock"
        tx.commit()
        second.join(10)
    assert second_claimed == [0]
    assert reasons == ["busy-running"]
    with fresh.connect() as conn:
        attempts = conn.execute(
            text("SELECT attempts FROM platform_sync.jobs WHERE id = :id"), {"id": job_id}
        ).scalar()
    assert attempts == 1
