"""Backoffice benchmarks (issue 5, seed 004).

* ``consumer_throughput``: change events/s through ``consumer.handler`` (SQS events → validation →
  ``sync.apply_changes`` → pairing), at batch 1,000 and batch 10, side by side in the same run with a
  per-row ORM baseline (the same validation, then ``session.merge`` per record, one commit per batch;
  the baseline does no LWW guard and no pairing, so it is flattered). Streams come from the OLTP
  simulator: interleaved orders, duplicates, out-of-order delivery. ``BENCH_BACKOFFICE_EVENTS``
  (default 20,000) sets the stream length (the batch-10 and ORM runs use a quarter of it). This is
  the warm container's rate: one batch of another stream goes first (imports, connection, statement
  caches: the cold start, measured by ``bench platform``), then each stream runs
  ``BENCH_BACKOFFICE_REPEATS`` (3) times into an emptied store; the median is the value.
* ``tx_lookup_latency``: ``GET /backoffice/admin/tx/{tx_id}`` through the Lambda handler (API Gateway
  v2 event → Mangum → JWT verification → one lookup statement → audit insert → commit), p50/p95/p99
  over ``BENCH_BACKOFFICE_REQUESTS`` (5,000) random ids, with ``BENCH_BACKOFFICE_ENTRIES``
  (1,000,000) ledger entries loaded by set-based SQL (``generate_series``), half a million pairs,
  then ``VACUUM (ANALYZE)`` and ``CHECKPOINT``: a store that has been serving for a while.
* ``freshness``: in the local cloud (``localcloud.LocalCloud``, real time), a change sent to
  ``backoffice-changes`` → visible through ``GET /admin/tx`` — p50/p95 over
  ``BENCH_BACKOFFICE_FRESHNESS`` (100) changes, for the catalog's ESM setting and for batch 1,000 /
  window 1 s; beside it, how fast a backlog of ``BENCH_BACKOFFICE_BACKLOG`` (5,000) queued changes
  drains with that setting. Skipped (with a line saying so) when the local cloud is not available.

Environment: a throwaway database from ``bench.support.database()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.support import database, percentiles, quiet_stdout

JWT = {
    "JWT_ISSUER": "opsdeck-bench",
    "JWT_AUDIENCE": "opsdeck",
    "JWT_ALGORITHMS": "HS256",
    "JWT_HS256_SECRET": "bench-secret-bench-secret-bench-secret-0123",
}


QUEUE = "backoffice-changes"


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _reset_settings() -> None:
    from opsdeck import auth, settings

    settings.platform.cache_clear()
    auth.reset()


def _truncate() -> None:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(
            text(
                "TRUNCATE bo.ledger_entries, bo.payment_orders, bo.payment_ledger_pairs, bo.sync_state, "
                "bo.admin_audit"
            )
        )


# ----------------------------------------------------------- consumer throughput


def _stream(n: int, seed: int, id_prefix: str = "") -> list[str]:
    from functions.backoffice.simulator import OltpSimulator, deliver

    sim = OltpSimulator(seed=seed, wallets=5000, id_prefix=id_prefix)
    events: list[dict] = []
    while len(events) < n:
        events += sim.run(500, concurrency=50)
    delivered = deliver(events, rng=random.Random(seed), duplicate_rate=0.03, reorder_window=50)[:n]
    return [json.dumps(e, separators=(",", ":")) for e in delivered]


def _sqs_batches(bodies: list[str], batch: int) -> list[str]:
    """The SQS events of ``bodies`` in batches, as the JSON payloads Lambda hands its runtime."""
    from localcloud.events import sqs_event, sqs_record

    sent = int(time.time() * 1000)
    return [
        json.dumps(
            sqs_event(
                sqs_record(body, queue_name=QUEUE, message_id=f"m{start + i}", sent_ms=sent + start + i)
                for i, body in enumerate(bodies[start : start + batch])
            )
        )
        for start in range(0, len(bodies), batch)
    ]


def _run_consumer(payloads: list[str]) -> float:
    """Seconds spent in ``consumer.handler`` over the batches.

    As in Lambda, each event is decoded just before its invocation (by the runtime: not timed)
    and dropped after it: a container holds one batch at a time, not the whole stream.
    """
    from functions.backoffice import consumer
    from tests.support import LambdaContext

    context = LambdaContext("backoffice-consumer", 60)
    elapsed = 0.0
    with quiet_stdout():
        for payload in payloads:
            event = json.loads(payload)
            started = time.perf_counter()
            result = consumer.handler(event, context)
            elapsed += time.perf_counter() - started
            assert result["batchItemFailures"] == [], result
            del event, result
    return elapsed


def _orm_baseline(bodies: list[str], batch: int) -> float:
    """Validation as in the consumer, then ``session.merge`` per record, one commit per batch."""
    from sqlalchemy.orm import Session, registry

    from functions.backoffice import changes, tables
    from opsdeck import db

    mapper = registry()

    class Entry:
        pass

    class Order:
        pass

    mapper.map_imperatively(Entry, tables.ledger_entries)
    mapper.map_imperatively(Order, tables.payment_orders)
    classes = {"ledger_entries": Entry, "payment_orders": Order}
    from datetime import UTC, datetime

    started = time.perf_counter()
    with Session(db.engine()) as session:
        for start in range(0, len(bodies), batch):
            now = datetime.now(UTC)
            for body in bodies[start : start + batch]:
                change = changes.parse(body)
                rank, major, minor, tomb = changes.order_key(change, 0)
                obj = classes[change["source"]["table"]]()
                for name, value in changes.image(change).items():
                    setattr(obj, name, value)
                obj.lww_rank, obj.lww_major, obj.lww_minor, obj.lww_tomb = rank, major, minor, tomb
                obj.source_ts = changes.utc_from_ms(change["source"].get("ts_ms"))
                obj.synced_at = now
                obj.source_lsn = change["source"].get("lsn")
                obj.deleted_at = now if change["op"] == "d" else None
                session.merge(obj)
            session.commit()
    return time.perf_counter() - started


def consumer_throughput() -> Iterator[dict]:
    total = _int_env("BENCH_BACKOFFICE_EVENTS", 20_000)
    repeats = _int_env("BENCH_BACKOFFICE_REPEATS", 3)
    small = max(1000, total // 4)
    bodies = _stream(total, seed=1)
    _truncate()
    _run_consumer(_sqs_batches(_stream(1000, seed=2, id_prefix="warm-"), 1000))  # the first invocation
    for batch, n in ((1000, total), (10, small)):
        payloads = _sqs_batches(bodies[:n], batch)
        runs = []
        for _ in range(repeats):
            _truncate()
            runs.append(n / _run_consumer(payloads))
        yield {
            "metric": "events_per_s",
            "subject": "consumer (bulk_upsert + pairing)",
            "batch": batch,
            "events": n,
            "value": round(statistics.median(runs)),
            "runs": [round(r) for r in runs],
            "unit": "events/s",
            "target": 20_000 if batch == 1000 else None,
        }
    for batch in (1000, 10):
        _truncate()
        elapsed = _orm_baseline(bodies[:small], batch)
        yield {
            "metric": "events_per_s",
            "subject": "per-row ORM baseline (session.merge, no LWW, no pairing)",
            "batch": batch,
            "events": small,
            "value": round(small / elapsed),
            "unit": "events/s",
        }


# ------------------------------------------------------------- GET /admin/tx


LOAD_SQL = """
INSERT INTO bo.payment_orders
    (order_id, status, amount, currency, payer_wallet_id, payee_wallet_id, created_at, updated_at, version,
     source_ts, source_lsn, lww_rank, lww_major, lww_minor, lww_tomb, synced_at)
SELECT 'po-' || lpad(i::text, 8, '0'), 'SETTLED', 100 * (10 + mod(i, 5000)), 'KRW',
       'w-' || lpad(mod(i, 50000)::text, 5, '0'), 'w-' || lpad(mod(i * 7 + 1, 50000)::text, 5, '0'),
       ts, ts, 3, ts, i, 2, 3, i, 0, now()
FROM generate_series(1, :orders) AS i,
     LATERAL (SELECT timestamptz '2026-01-01' + i * interval '1 second') AS t(ts);

INSERT INTO bo.ledger_entries
    (tx_id, wallet_id, type, amount, currency, status, related_id, related_type, created_at, updated_at,
     version, source_ts, source_lsn, lww_rank, lww_major, lww_minor, lww_tomb, synced_at)
SELECT 'tx-' || lpad((2 * i - 1 + leg)::text, 10, '0'),
       CASE leg WHEN 0 THEN o.payer_wallet_id ELSE o.payee_wallet_id END,
       CASE leg WHEN 0 THEN 'PAYMENT' ELSE 'RECEIVE' END,
       o.amount, 'KRW', 'SETTLED', o.order_id, 'PAYMENT_ORDER', o.created_at, o.updated_at, 2,
       o.source_ts, o.source_lsn, 2, 2, o.source_lsn, 0, now()
FROM (SELECT row_number() OVER (ORDER BY order_id) AS i, * FROM bo.payment_orders) AS o,
     generate_series(0, 1) AS leg;

INSERT INTO bo.payment_ledger_pairs
    (payment_order_id, payment_tx_id, receive_tx_id, payment_legs, receive_legs, pairing_status,
     first_seen_at, completed_at, updated_at)
SELECT order_id, 'tx-' || lpad((2 * i - 1)::text, 10, '0'), 'tx-' || lpad((2 * i)::text, 10, '0'), 1, 1,
       'COMPLETE', now(), now(), now()
FROM (SELECT row_number() OVER (ORDER BY order_id) AS i, order_id FROM bo.payment_orders) AS o;

INSERT INTO bo.sync_state (stream, last_source_ts, last_applied_at)
VALUES ('ledger_entries', now() - interval '2 seconds', now()),
       ('payment_orders', now() - interval '2 seconds', now());
"""


def _load(entries: int) -> float:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from opsdeck import db

    started = time.perf_counter()
    with db.transaction() as conn:
        for statement in LOAD_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), {"orders": entries // 2})
    loaded = time.perf_counter() - started
    # A store that has been serving for a while: statistics, hint bits and the visibility map set
    # by (auto)vacuum, the load's dirty pages written out, so lookups do not pay for the load.
    with db.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) bo.ledger_entries, bo.payment_orders, bo.payment_ledger_pairs"))
        with contextlib.suppress(DBAPIError):  # needs superuser or pg_checkpoint on a BENCH_DATABASE_URL
            conn.execute(text("CHECKPOINT"))
    return loaded


def tx_lookup_latency() -> Iterator[dict]:
    from functions.backoffice import api
    from localcloud.events import http_event
    from opsdeck.auth import issue_dev_token
    from tests.support import LambdaContext

    entries = _int_env("BENCH_BACKOFFICE_ENTRIES", 1_000_000)
    requests = _int_env("BENCH_BACKOFFICE_REQUESTS", 5_000)
    _truncate()
    load_s = _load(entries)
    yield {
        "metric": "load_s",
        "subject": "ledger entries (set-based SQL)",
        "entries": entries,
        "value": round(load_s, 1),
        "unit": "s",
    }
    os.environ.update(JWT)
    _reset_settings()
    bearer = f"Bearer {issue_dev_token('bench', ['ADMIN_READ'], ttl_s=3600)}"
    rng = random.Random(5)
    context = LambdaContext("backoffice-api")

    def event(tx_id: str) -> dict[str, Any]:
        return http_event(
            "GET",
            f"/backoffice/admin/tx/{tx_id}",
            route_key="GET /backoffice/admin/tx/{tx_id}",
            path_parameters={"tx_id": tx_id},
            headers={"authorization": bearer, "user-agent": "bench"},
        )

    ids = [f"tx-{rng.randint(1, entries):010d}" for _ in range(requests + 500)]
    events = [event(tx_id) for tx_id in ids]
    for e in events[:500]:  # warm-up: imports, connection, statement caches
        api.handler(e, context)
    samples = []
    for e in events[500:]:
        started = time.perf_counter()
        response = api.handler(e, context)
        samples.append(time.perf_counter() - started)
        assert response["statusCode"] == 200, response
    ms = {k.replace("_us", "_ms"): round(v / 1000, 3) for k, v in percentiles(samples).items()}
    yield {
        "metric": "latency",
        "subject": "GET /backoffice/admin/tx/{tx_id} via Lambda handler (JWT + lookup + audit)",
        "entries": entries,
        "requests": requests,
        **ms,
        "value": ms["p95_ms"],
        "unit": "ms",
        "target_p95_ms": 3,
    }


# ---------------------------------------------------------------- freshness


def freshness() -> Iterator[dict]:
    try:
        from localcloud import LocalCloud
    except ImportError:
        yield {"metric": "freshness", "skipped": "localcloud.LocalCloud is not available"}
        return
    from dataclasses import replace

    from functions import catalog

    samples_n = _int_env("BENCH_BACKOFFICE_FRESHNESS", 100)
    consumer = catalog.by_name()["backoffice-consumer"]
    api = catalog.by_name()["backoffice-api"]
    for label, trigger in (
        ("catalog", consumer.trigger),
        ("batch 1000 / window 1 s", replace(consumer.trigger, batch_size=1000, batching_window_s=1)),
    ):
        functions = (replace(consumer, trigger=trigger), api)
        yield _freshness_run(LocalCloud, functions, label, samples_n)


def _freshness_run(local_cloud: Any, functions: tuple, label: str, samples_n: int) -> dict:
    import tempfile

    from opsdeck import db
    from opsdeck.auth import issue_dev_token

    _truncate()
    trigger = functions[0].trigger
    samples = []
    backlog = _stream(_int_env("BENCH_BACKOFFICE_BACKLOG", 5000), seed=3)
    with tempfile.TemporaryDirectory() as root, quiet_stdout():
        cloud = local_cloud(
            root=root, database_url=os.environ["DATABASE_URL"], redis_url="fakeredis://", catalog=functions
        )
        with cloud:  # real clock: a dispatcher thread polls the queue like the ESM
            headers = {"authorization": f"Bearer {issue_dev_token('bench', ['ADMIN_READ'])}"}
            rng = random.Random(7)
            for i in range(samples_n):
                tx_id = f"fresh-{i:05d}"
                change = {
                    "op": "c",
                    "after": {
                        "tx_id": tx_id,
                        "wallet_id": "w-fresh",
                        "type": "PAYMENT",
                        "amount": 100,
                        "currency": "KRW",
                        "status": "PENDING",
                        "created_at": "2026-01-01T00:00:00Z",
                        "version": 1,
                    },
                    "source": {"table": "ledger_entries", "ts_ms": int(time.time() * 1000), "lsn": i},
                }
                started = time.perf_counter()
                cloud.send("backoffice-changes", json.dumps(change))
                while True:
                    status, _, _ = cloud.request("GET", f"/backoffice/admin/tx/{tx_id}", headers=headers)
                    if status == 200:
                        break
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"{tx_id} not visible after 30 s")
                    time.sleep(0.005)
                samples.append(time.perf_counter() - started)
                time.sleep(rng.uniform(0.0, 0.05))  # light, irregular load: one change at a time
            # the other side of the trade-off: how fast a backlog drains
            for body in backlog:
                cloud.send("backoffice-changes", body)
            started = time.perf_counter()
            while cloud.depth("backoffice-changes") != (0, 0):
                if time.perf_counter() - started > 600:
                    raise RuntimeError("backlog not drained after 600 s")
                time.sleep(0.01)
            drain_s = time.perf_counter() - started
    db.reset()
    ms = {k.replace("_us", "_ms"): round(v / 1000, 1) for k, v in percentiles(samples, (50, 95)).items()}
    return {
        "metric": "freshness",
        "subject": f"send → visible via GET /admin/tx, ESM {label}",
        "batch_size": trigger.batch_size,
        "batching_window_s": trigger.batching_window_s,
        "changes": samples_n,
        **ms,
        "value": ms["p95_ms"],
        "unit": "ms",
        "target_p95_ms": 250,
        "backlog_events": len(backlog),
        "backlog_events_per_s": round(len(backlog) / drain_s),
    }


def run() -> Iterator[dict]:
    with database():
        yield from consumer_throughput()
        yield from tx_lookup_latency()
        yield from freshness()
