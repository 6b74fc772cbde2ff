"""Platform benchmarks (issue: platform core).

* cold_start: import time of every catalog handler module in a fresh process laid out like
  Lambda (layer + code root on PYTHONPATH, no site hooks), median of 7; also the time once the
  modules it defers (``lazy_import``) are loaded too, i.e. what its first invocation adds; and,
  in the same run, the naive stack imported eagerly, bare FastAPI and SQLAlchemy + pg8000.
* handler_path: API Gateway v2 event → Mangum → FastAPI → response for a route with no I/O,
  through the layer's real factory and Lambda handler, p50/p99 over 5,000 calls.
* bulk_upsert: rows/s at batch 1,000 and 10, ``opsdeck.db.bulk_upsert`` side by side with
  SQLAlchemy ``executemany`` of the equivalent ``INSERT … ON CONFLICT`` in the same run.
* date_reads: a page of rows with a ``date`` and two ``timestamptz`` columns read through
  ``opsdeck.db.transaction``, with ``opsdeck.pgwire``'s ISO readers and with pg8000's own
  ``strptime`` readers, in alternating rounds of one run: the statement's median time and the
  microseconds a row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from decimal import Decimal

from bench.support import database, fresh_import_ms, lambda_like_env, percentiles

NAIVE = (
    "fastapi, mangum, sqlalchemy, pg8000, redis, httpx, "
    "aws_lambda_powertools.logging, aws_lambda_powertools.metrics"
)
SQL = "sqlalchemy.dialects.postgresql.pg8000"
TARGET_MS = {"http": 300, "other": 200}


def cold_start() -> Iterator[dict]:
    from functions.catalog import FUNCTIONS

    floor = {}
    for name, module in (("naive-stack", NAIVE), ("bare-fastapi", "fastapi"), ("sqlalchemy+pg8000", SQL)):
        floor[name], _, _ = fresh_import_ms(module, lambda_like_env())
        yield {"metric": "import_ms", "subject": name, "value": floor[name], "unit": "ms"}
    for f in FUNCTIONS:
        env = lambda_like_env(f.runtime_environment("bench"))
        ms, with_deferred, heavy = fresh_import_ms(f.module, env)
        kind = "http" if f.trigger.kind == "http" else "other"
        yield {
            "metric": "import_ms",
            "subject": f.name,
            "trigger": f.trigger.kind,
            "value": ms,
            "unit": "ms",
            "target_ms": TARGET_MS[kind],
            "vs_naive_stack": round(ms / floor["naive-stack"], 2),
            # the modules deferred with lazy_import, loaded by the first invocation that needs them
            "with_deferred_ms": with_deferred,
            "imports_when_loaded": sorted(k for k, v in heavy.items() if v),
        }


def handler_path(calls: int = 5000) -> Iterator[dict]:
    from fastapi import APIRouter

    from localcloud.events import http_event
    from opsdeck.api import create_app, lambda_handler
    from tests.support import LambdaContext

    router = APIRouter(prefix="/bench")

    @router.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    handler = lambda_handler(create_app(title="bench", base_path="/bench", routers=[router]))
    event = http_event("GET", "/bench/ping")
    context = LambdaContext("bench")
    for _ in range(500):
        handler(event, context)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        response = handler(event, context)
        samples.append(time.perf_counter() - started)
    assert response["statusCode"] == 200
    yield {
        "metric": "latency",
        "subject": "apigw-v2→mangum→fastapi (no I/O)",
        "calls": calls,
        **percentiles(samples, (50, 99)),
        "target_p50_us": 200,
    }


def bulk_upsert_rows_per_s() -> Iterator[dict]:
    from sqlalchemy import BigInteger, Column, DateTime, MetaData, Numeric, Table, Text, text
    from sqlalchemy.dialects.postgresql import JSONB, insert

    from opsdeck import db

    with database():
        table = Table(
            "bench_rows",
            MetaData(schema="public"),
            Column("id", Text, primary_key=True),
            Column("amount", Numeric(18, 2)),
            Column("status", Text),
            Column("payload", JSONB),
            Column("version", BigInteger, nullable=False),
            Column("updated_at", DateTime(timezone=True)),
        )
        with db.transaction() as conn:
            table.metadata.create_all(conn)
        from datetime import UTC, datetime

        now = datetime.now(UTC)

        def rows(n: int, offset: int) -> list[dict]:
            return [
                {
                    "id": f"r{offset + i}",
                    "amount": Decimal("12.34"),
                    "status": "Shipped",
                    "payload": {"i": offset + i, "sku": "SKU-1"},
                    "version": 1,
                    "updated_at": now,
                }
                for i in range(n)
            ]

        total = int(os.environ.get("BENCH_BULK_ROWS", "20000"))
        for batch in (1000, 10):
            n = total if batch == 1000 else min(total, 2000)
            for method in ("bulk_upsert", "executemany"):
                with db.transaction() as conn:
                    conn.execute(text("TRUNCATE public.bench_rows"))
                data = rows(n, 0)
                stmt = insert(table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={c: stmt.excluded[c] for c in ("amount", "status", "payload", "version")},
                )
                started = time.perf_counter()
                for start in range(0, n, batch):
                    chunk = data[start : start + batch]
                    with db.transaction() as conn:
                        if method == "bulk_upsert":
                            db.bulk_upsert(conn, table, chunk, key=["id"], version=["version"])
                        else:
                            conn.execute(stmt, chunk)
                elapsed = time.perf_counter() - started
                yield {
                    "metric": "rows_per_s",
                    "subject": method,
                    "batch": batch,
                    "rows": n,
                    "value": round(n / elapsed),
                    "unit": "rows/s",
                    "target": 50000 if batch == 1000 else None,
                }


def date_reads(rows: int = 500, rounds: int = 10, reads: int = 40) -> Iterator[dict]:
    from pg8000 import converters
    from sqlalchemy import text

    from opsdeck import db, pgwire

    statement = text(
        "SELECT i, DATE '2026-01-01' + i, "
        "TIMESTAMPTZ '2026-01-01 00:00:00.123456+00' + i * interval '1 min', now() "
        "FROM generate_series(1, :n) AS i"
    )
    oids = (pgwire.DATE, pgwire.TIMESTAMP, pgwire.TIMESTAMPTZ)
    with database():
        db.engine()  # installs pgwire
        fast = {oid: converters.PG_TYPES[oid] for oid in oids}
        own = {oid: fast[oid].original for oid in oids}

        install = pgwire._iso_dates_and_times

        def timed(readers: dict) -> list[float]:
            converters.PG_TYPES.update(readers)
            # a new engine installs pgwire again (which would put its readers back): not for
            # pg8000's rounds; a connection copies the readers when it opens
            pgwire._iso_dates_and_times = install if readers is fast else lambda: None
            db.reset()
            samples = []
            for i in range(reads + 5):
                started = time.perf_counter()
                with db.transaction() as conn:
                    got = conn.execute(statement, {"n": rows}).all()
                if i >= 5:
                    samples.append(time.perf_counter() - started)
            assert len(got) == rows
            assert all(type(v) is not str for v in got[-1][1:])  # read as date / datetime
            return samples

        by = {"pgwire": [], "pg8000": []}
        try:
            for r in range(rounds):
                for name, readers in (("pgwire", fast), ("pg8000", own))[:: 1 if r % 2 == 0 else -1]:
                    by[name].extend(timed(readers))
        finally:
            pgwire._iso_dates_and_times = install
            converters.PG_TYPES.update(fast)
            db.reset()
    medians = {name: sorted(s)[len(s) // 2] for name, s in by.items()}
    for name, median in medians.items():
        yield {
            "metric": "latency",
            "subject": f"read {rows} rows of (int, date, timestamptz, timestamptz), {name} readers",
            "reads": len(by[name]),
            "p50_us": round(median * 1e6, 1),
            "us_per_row": round(median * 1e6 / rows, 2),
        }
    yield {
        "metric": "speedup",
        "subject": "pgwire ISO date/time readers vs pg8000's, same statement, alternating rounds",
        "value": round(medians["pg8000"] / medians["pgwire"], 2),
    }


def run() -> Iterator[dict]:
    yield from cold_start()
    yield from handler_path()
    yield from bulk_upsert_rows_per_s()
    yield from date_reads()
