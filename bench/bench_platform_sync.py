"""platform_sync benchmarks (issue 10, seed 001).

* ``dispatcher_tick``: the two dispatchers' ticks for one minute (sync and valid) with
  ``BENCH_PS_PLATFORMS`` (1,000) active platforms, each through the function's real entry point in
  the local cloud (``LocalCloud.invoke`` with a scheduled event), against the local SQS endpoint
  (moto server over HTTP, ``SendMessageBatch`` of 10): median of ``BENCH_PS_REPEATS`` (5) minutes.
  Each tick is one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` + 100 batches. A repeated tick for
  a minute already dispatched is measured beside it (it inserts and sends nothing). Target ≤ 1 s
  for both task types together. Series, interleaved and run twice: ``BENCH_PS_CONCURRENCY``
  (``1,8,16``: SendMessageBatch calls in flight) by ``BENCH_PS_SQS_PATHS`` (``fast``: the local
  endpoint's SQS fast path, what the local cloud runs; ``moto``: the same calls answered by moto's
  view, as before the fast path — ``fast,moto`` compares them side by side).
* ``worker_throughput``: jobs/s through ``worker.handler`` (SQS events of 10 → claim → 10
  concurrent calls → record) against the platform simulator at 0 ms latency (uvicorn in a thread,
  real HTTP on 127.0.0.1), one process, ``BENCH_PS_JOBS`` (2,000) jobs; the first batch warms up.
* ``steady_state``: ``BENCH_PS_PLATFORMS`` platforms for ``BENCH_PS_MINUTES`` (60) minutes of the
  local cloud's virtual clock: the rules fire every minute and every tick is also delivered a second
  time (EventBridge is at-least-once). The worker is left out (the messages stay queued; running
  120,000 calls is the throughput bench's job, not this one's), so the check is the dispatcher's
  contract: exactly one job per platform, task type and minute — none missing, none twice —
  and exactly one message per job.

Environment: a throwaway database from ``bench.support.database()``; the local cloud uses it.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.support import database, quiet_stdout

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _platforms(n: int, base_url: str) -> None:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO platform_sync.platforms (name, base_url, endpoints, connect_timeout_s, "
                "read_timeout_s) SELECT 'bench-' || i, :base || '/p/bench-' || i, "
                """'{"sync": "/sync", "valid": "/valid"}'::jsonb, 3, 10 FROM generate_series(1, :n) i"""
            ),
            {"n": n, "base": base_url},
        )


def _cloud(root: str, database_url: str, functions: list[str]):
    from localcloud import LocalCloud

    return LocalCloud(
        root=root, database_url=database_url, virtual_clock=START, deploy=False, functions=functions
    )


def _event(task_type: str, when: datetime) -> dict[str, Any]:
    from localcloud.events import schedule_event

    return schedule_event(
        f"opsdeck-local-platform-sync-{task_type}-schedule", when=when, detail={"task_type": task_type}
    )


def dispatcher_tick(url: str) -> Iterator[dict[str, Any]]:
    from functions.platform_sync import jobs
    from localcloud import awsapi

    n, repeats = _int_env("BENCH_PS_PLATFORMS", 1000), _int_env("BENCH_PS_REPEATS", 5)
    concurrencies = [int(c) for c in os.environ.get("BENCH_PS_CONCURRENCY", "1,8,16").split(",")]
    paths = os.environ.get("BENCH_PS_SQS_PATHS", "fast").split(",")
    if set(paths) - {"fast", "moto"}:
        raise ValueError(f"BENCH_PS_SQS_PATHS: fast and/or moto, not {paths}")
    functions = ["platform-sync-dispatch-sync", "platform-sync-dispatch-valid"]
    send = jobs.aws.send_messages
    in_send: list[float] = []

    def timed_send(*args: Any, **kwargs: Any) -> int:
        began = time.perf_counter()
        try:
            return send(*args, **kwargs)
        finally:
            in_send.append(time.perf_counter() - began)

    jobs.aws.send_messages = timed_send  # type: ignore[assignment]
    default_concurrency, default_path = jobs.SEND_CONCURRENCY, awsapi.FAST_PATH
    minute = 0
    try:
        with tempfile.TemporaryDirectory() as root, _cloud(root, url, functions) as cloud:
            _platforms(n, "https://bench.example.com")
            series = [(p, c) for _ in range(2) for p in paths for c in concurrencies]  # interleaved
            for path, concurrency in series:
                jobs.SEND_CONCURRENCY = concurrency
                awsapi.FAST_PATH = path == "fast"
                both, sqs, repeated, dispatched = [], [], [], []
                for i in range(repeats + 1):  # the first minute warms up (imports, connections)
                    when = START + timedelta(minutes=minute)
                    minute += 1
                    in_send.clear()
                    began = time.perf_counter()
                    with quiet_stdout():
                        results = [
                            cloud.invoke(f"platform-sync-dispatch-{t}", _event(t, when))
                            for t in ("sync", "valid")
                        ]
                    elapsed, sending = time.perf_counter() - began, sum(in_send)
                    began = time.perf_counter()
                    with quiet_stdout():
                        again = [
                            cloud.invoke(f"platform-sync-dispatch-{t}", _event(t, when))
                            for t in ("sync", "valid")
                        ]
                    elapsed_again = time.perf_counter() - began
                    if i:
                        both.append(elapsed)
                        sqs.append(sending)
                        repeated.append(elapsed_again)
                        dispatched.append(sum(r["dispatched"] for r in results + again))
                yield {
                    "case": "dispatcher_tick",
                    "platforms": n,
                    "task_types": 2,
                    "send_concurrency": concurrency,
                    "local_sqs_path": path,
                    "median_s_both_task_types": round(statistics.median(both), 3),
                    "median_s_in_sendmessagebatch": round(statistics.median(sqs), 3),
                    "median_s_database_and_rest": round(
                        statistics.median(b - q for b, q in zip(both, sqs, strict=True)), 3
                    ),
                    "median_s_repeated_tick": round(statistics.median(repeated), 3),
                    "dispatched_per_minute": sorted(set(dispatched)),
                    "minutes": repeats,
                    "target_s": 1.0,
                }
    finally:
        jobs.aws.send_messages = send  # type: ignore[assignment]
        jobs.SEND_CONCURRENCY, awsapi.FAST_PATH = default_concurrency, default_path


def worker_throughput(url: str) -> Iterator[dict[str, Any]]:
    from sqlalchemy import text

    from functions.platform_sync import simulator, worker, worker_run
    from localcloud.events import sqs_event, sqs_record
    from opsdeck import db
    from tests.support import LambdaContext

    jobs = _int_env("BENCH_PS_JOBS", 2000)
    previous = os.environ.get("OUTBOUND_ALLOW_LOCAL")
    os.environ["OUTBOUND_ALLOW_LOCAL"] = "true"  # the simulator is plain http on 127.0.0.1
    worker_run.reset()
    with simulator.serve(simulator.create_app()) as served:
        _platforms(jobs // 2, served.url)
        with db.transaction() as conn:
            ids = list(
                conn.execute(
                    text(
                        "INSERT INTO platform_sync.jobs "
                        "(id, platform_id, task_type, trigger, scheduled_for, status) "
                        "SELECT t || '-' || p.id || '-20261203T0900Z', p.id, t, 'schedule', :m, 'queued' "
                        "FROM platform_sync.platforms p, unnest(ARRAY['sync', 'valid']) t RETURNING id"
                    ),
                    {"m": START},
                ).scalars()
            )
        records = [
            sqs_record(json.dumps({"job_id": j}), queue_name="platform-sync-jobs", message_id=f"m{i}")
            for i, j in enumerate(ids)
        ]
        batches = [records[i : i + 10] for i in range(0, len(records), 10)]
        context = LambdaContext("platform-sync-worker", 60)
        with quiet_stdout():
            worker.handler(sqs_event(batches[0]), context)  # warm-up
            began = time.perf_counter()
            failed = sum(len(worker.handler(sqs_event(b), context)["batchItemFailures"]) for b in batches[1:])
            elapsed = time.perf_counter() - began
        calls = len(served.simulator.calls)
    with db.transaction() as conn:
        succeeded = conn.execute(
            text("SELECT count(*) FROM platform_sync.jobs WHERE status = 'succeeded'")
        ).scalar()
    worker_run.reset()
    if previous is None:
        os.environ.pop("OUTBOUND_ALLOW_LOCAL", None)
    else:
        os.environ["OUTBOUND_ALLOW_LOCAL"] = previous
    done = len(records) - len(batches[0])
    yield {
        "case": "worker_throughput",
        "jobs": done,
        "batch_size": 10,
        "jobs_per_s": round(done / elapsed, 1),
        "ms_per_batch": round(elapsed / (len(batches) - 1) * 1000, 2),
        "failed": failed,
        "succeeded": succeeded,
        "platform_calls": calls,
        "simulator_latency_ms": 0,
    }


def steady_state(url: str) -> Iterator[dict[str, Any]]:
    from sqlalchemy import text

    from opsdeck import db

    n, minutes = _int_env("BENCH_PS_PLATFORMS", 1000), _int_env("BENCH_PS_MINUTES", 60)
    functions = ["platform-sync-dispatch-sync", "platform-sync-dispatch-valid"]
    with tempfile.TemporaryDirectory() as root, _cloud(root, url, functions) as cloud:
        _platforms(n, "https://bench.example.com")
        began = time.perf_counter()
        with quiet_stdout():
            for _ in range(minutes):
                cloud.advance(60)
                for t in ("sync", "valid"):  # the same minute's tick delivered a second time
                    cloud.invoke(f"platform-sync-dispatch-{t}", _event(t, cloud.clock.now()))
        elapsed = time.perf_counter() - began
        visible, _ = cloud.depth("platform-sync-jobs")
        ticks = sum(1 for e in cloud.journal() if e["trigger"] == "schedule")
    with db.transaction() as conn:
        per_key = conn.execute(
            text(
                "SELECT count(*) AS n, "
                "count(DISTINCT (platform_id, task_type, scheduled_for)) AS distinct_keys, "
                "min(c), max(c) FROM (SELECT platform_id, task_type, scheduled_for, "
                "count(*) OVER (PARTITION BY platform_id, task_type) AS c FROM platform_sync.jobs) x"
            )
        ).one()
        minutes_seen = conn.execute(
            text("SELECT count(DISTINCT scheduled_for) FROM platform_sync.jobs")
        ).scalar()
    expected = n * 2 * minutes
    yield {
        "case": "steady_state",
        "platforms": n,
        "virtual_minutes": minutes,
        "scheduled_ticks": ticks,
        "duplicate_ticks": 2 * minutes,
        "jobs": per_key.n,
        "expected_jobs": expected,
        "distinct_platform_type_minute": per_key.distinct_keys,
        "jobs_per_platform_and_type": [per_key.min, per_key.max],
        "distinct_minutes": minutes_seen,
        "queued_messages": visible,
        "exact": per_key.n == per_key.distinct_keys == expected == visible and minutes_seen == minutes,
        "wall_s": round(elapsed, 1),
    }


def run() -> Iterator[dict[str, Any]]:
    wanted = os.environ.get("BENCH_PS_CASES", "dispatcher_tick,worker_throughput,steady_state").split(",")
    for case in (dispatcher_tick, worker_throughput, steady_state):
        if case.__name__ not in wanted:
            continue
        with database() as url:
            yield from case(url)
