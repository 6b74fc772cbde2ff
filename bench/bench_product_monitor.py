"""product_monitor: ``python -m bench product_monitor`` (JSON lines).

Database: ``bench.support.database()`` (a throwaway migrated database). Redis: ``BENCH_REDIS_URL``
(database 14, flushed), else the in-process fake. SQS: moto in process. The Apify simulator
runs in process over real HTTP (uvicorn on 127.0.0.1:0), as in the tests.

1. **normalise + promote** — 10,000 simulated Apify product items in jobs of 100, each with
   its ASINs' review items (10 per ASIN, the default), through ``ingest.land`` — what the worker
   does once Apify answered: both actors' raw items staged (in the promotion's transaction), normalised,
   promoted (products, metrics, review summaries, anomaly alerts against the previous day, job
   and run counters, the run closed with its KPIs: one transaction per job) — first into empty
   tables, then the same ASINs again the next day (products updated, anomalies computed against
   day one). Product items/s (target ≥ 10,000 at batch 100), all raw items/s, ms per job; only
   the time inside ``land`` counts (each job's items parsed from JSON bytes just before, with
   the handler's ``gc.freeze()``: see ``_land_all``). Then the same two days again, emptied
   first, with the worker's reserved concurrency (the catalog's ``max_concurrency``, at most one
   per CPU: that many worker processes, each landing its share of the jobs, at once, against
   the one database):
   product items/s over the wall time from their common start to the last one's end (each
   process parses its jobs' response bytes before the start, as the single worker's loop does
   outside its timing). And per job, the CPU time of the worker process and of the PostgreSQL
   server (every ``postgres`` process of this machine, read from ``/proc``; Linux only), which
   bound what this machine can do however many workers run: at most
   ``cpus * 100 / (worker + server CPU ms a job)`` product items/s.
2. **GET /v1/products/{asin} through the Lambda handler** (Mangum, JWT, cache, ETag, telemetry):
   cache-hit p50/p99 on one warm ASIN; then a Zipf workload (s = 1.1) over the 10,000 ASINs
   with 1 % writes mixed in (a new metric row for the ASIN, then what the worker does after
   its commit: generation bump + write-through of the new summary), after a warm-up of the
   same length. The cache starts as an ingest leaves it (every summary written through;
   ``BENCH_PM_COLD=1`` starts it empty instead). Hit ratio (fresh + stale over all reads) and
   p50/p95/p99 of the reads (target ≥ 95 %, p95 ≤ 2 ms in process).
3. **ingestion** — 5,000 tracked ASINs through the planner's handler → SQS (moto) → 4 worker
   threads calling the worker's handler, against the simulator limited to ``RATE`` requests/s
   (burst 2) and the client's shared bucket 2 % below it, burst 1 (``CLIENT_MARGIN``). The
   minimum wall time the limit allows is ``(requests - burst) / RATE`` for the requests the
   simulator answered; reported: the
   wall time of planner + queue + workers, its ratio to that minimum (target ≤ 1.15), and
   ASINs lost (no metric row) or duplicated (fetched twice) — both targets 0.

Figures from a shared/noisy machine are not comparable; record them on a quiet one.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.support import bench_redis_url, configure, database, percentiles, quiet_stdout
from tests.support import LambdaContext

N_ASINS = 10_000
BATCH = 100
RATE = 5.0
#: the client paces this fraction below the upstream's limit (clock jitter must not tip it over)
CLIENT_MARGIN = 0.98
INGEST_ASINS = 5_000
WORKERS = 4
#: the reviews actor's default (``APIFY_REVIEWS_PER_ASIN``); ``BENCH_PM_REVIEWS=0`` leaves the
#: reviews out (only to compare with the code before reviews existed, like for like)
REVIEWS_PER_ASIN = int(os.environ.get("BENCH_PM_REVIEWS", "10"))


def _asins(n: int, prefix: str = "B0BN") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


#: the Redis database of this bench (``BENCH_REDIS_URL``'s is replaced)
REDIS_DB = 14


def _configure(**values: str | None) -> None:
    from functions.product_monitor import ingest

    configure((ingest.reset_clients,), **values)


def _truncate() -> None:
    from sqlalchemy import text

    from opsdeck import cache, db

    with db.transaction() as conn:
        names = conn.execute(
            text(
                "SELECT string_agg(schemaname || '.' || tablename, ', ') FROM pg_tables "
                "WHERE schemaname IN ('product_monitor', 'staging_raw')"
            )
        ).scalar()
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    cache.client().flushdb()


# ------------------------------------------------------------ normalise + promote


def _plan_jobs(asins: list[str], now: datetime) -> list[Any]:
    from functions.product_monitor import domain, repository
    from opsdeck import db

    with db.transaction() as conn:
        repository.ensure_partitions(conn, now.date() - timedelta(days=40), 3)
        run_id, jobs = repository.create_run(conn, "manual", "bench", domain.shard(asins, BATCH, 50), now)
    return [repository.Job(job_id, run_id, batch, 1, None) for job_id, batch in jobs]


def _bodies(jobs, items: dict[str, Any], reviews: dict[str, list[Any]]) -> list[tuple[bytes, bytes | None]]:
    """Each job's two Apify responses as the worker receives them: JSON bytes (dataset items)."""
    import json

    return [
        (
            json.dumps([items[a] for a in job.asins]).encode(),
            json.dumps([r for a in job.asins for r in reviews[a]]).encode() if REVIEWS_PER_ASIN else None,
        )
        for job in jobs
    ]


def _land_all(jobs, bodies: list[tuple[bytes, bytes | None]], captured: datetime) -> tuple[float, float]:
    """What the worker does once Apify answered (``ingest.land``): raw items of both actors
    staged, normalised, promoted with the run's counters — per job; the seconds inside ``land``.

    As in the worker: each job's items are parsed from the response bytes just before (like
    ``httpx.Response.json()``; not timed: that is the fetch), so they are young objects, the
    client hands the bytes along (``ActorResult.raw``: what is staged), and the
    container's long-lived objects are frozen out of the cycle collector's sight (the handler's
    ``gc.freeze()`` after its first invocation, ``opsdeck.observability.entry``); the bench's own
    data waits as bytes, which the collector does not track."""
    import gc
    import json
    from decimal import Decimal

    from functions.product_monitor import ingest
    from functions.product_monitor.apify import ActorResult
    from functions.product_monitor.settings import load

    settings = load()
    thresholds = ingest.thresholds_of(settings)
    gc.collect()
    gc.freeze()
    elapsed = cpu = 0.0
    try:
        for job, (product_body, review_body) in zip(jobs, bodies, strict=True):
            product = ActorResult(json.loads(product_body), Decimal("0.25"), "run", "async", product_body)
            review = (
                ActorResult(json.loads(review_body), Decimal("0.75"), "run2", "async", review_body)
                if review_body is not None
                else None
            )
            started, c = time.perf_counter(), time.process_time()
            ingest.land(job, product, review, settings, captured, thresholds=thresholds)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - c
    finally:
        gc.unfreeze()
    return elapsed, cpu


def _server_cpu_s() -> float | None:
    """CPU seconds used so far by every ``postgres`` process of this machine (the server the
    bench talks to is local), or None where ``/proc`` does not say (not Linux)."""
    total, found = 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                name, rest = f.read().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, IndexError, ValueError):
            continue
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None


def _worker_concurrency() -> int:
    """The worker's reserved concurrency (the catalog's ``max_concurrency``), at most one process
    per CPU of this machine: in production each worker has its own CPU and the database its own
    machine; here more processes than CPUs only take turns on the same CPUs with the server
    (5 processes on this VM's 2 CPUs spent ~1.2-1.7 times the CPU a job of 2 processes and did
    fewer items/s: BENCHMARKS.md)."""
    from functions import catalog

    trigger = catalog.by_name()["product-monitor-worker"].trigger
    return max(1, min(int(trigger.max_concurrency or 1), os.cpu_count() or 1))


def _concurrent_worker(jobs, bodies, captured: datetime, start, ready) -> float:
    """One worker process: parse its jobs' bodies, wait for the common start, land them all.
    Returns its CPU seconds inside ``land``."""
    import gc
    import json
    from decimal import Decimal

    from bench.support import configure
    from functions.product_monitor import ingest
    from functions.product_monitor.apify import ActorResult
    from functions.product_monitor.settings import load

    configure((ingest.reset_clients,))
    settings = load()
    thresholds = ingest.thresholds_of(settings)
    gc.collect()
    gc.freeze()  # the container's long-lived objects, as in ``_land_all``
    results = [
        (
            ActorResult(json.loads(p), Decimal("0.25"), "run", "async", p),
            ActorResult(json.loads(r), Decimal("0.75"), "run2", "async", r) if r is not None else None,
        )
        for p, r in bodies
    ]
    ready.set()
    start.wait()
    cpu = 0.0
    for job, (product, review) in zip(jobs, results, strict=True):
        c = time.process_time()
        ingest.land(job, product, review, settings, captured, thresholds=thresholds)
        cpu += time.process_time() - c
    return cpu


def _land_concurrently(jobs, bodies, captured: datetime, workers: int) -> tuple[float, float, float | None]:
    """``workers`` processes (spawned: each its own interpreter and connection pool, like a
    Lambda) landing jobs k, k + workers, … at once. Returns the wall time from their common
    start to the last one's end, their CPU seconds inside ``land``, the server's CPU seconds."""
    import multiprocessing

    from opsdeck import db

    db.reset()  # nothing of the parent's pool is shared
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(workers) as pool:
        start = manager.Event()
        ready = [manager.Event() for _ in range(workers)]
        pending = [
            pool.apply_async(
                _concurrent_worker, (jobs[k::workers], bodies[k::workers], captured, start, ready[k])
            )
            for k in range(workers)
        ]
        for event in ready:
            event.wait()
        server = _server_cpu_s()
        began = time.perf_counter()
        start.set()
        done = [p.get() for p in pending]
        wall = time.perf_counter() - began
        after = _server_cpu_s()
    used = (after - server) if server is not None and after is not None else None
    return wall, sum(done), used


def _throughput() -> Iterable[dict[str, Any]]:
    from functions.product_monitor import simulator

    asins = _asins(N_ASINS)
    sim = simulator.Simulator(seed=7)
    day1 = datetime.now(UTC).replace(hour=0, minute=30) - timedelta(days=1)
    day2 = day1 + timedelta(days=1)
    per_asin = REVIEWS_PER_ASIN
    jobs1, jobs2 = _plan_jobs(asins, day1), _plan_jobs(asins, day2)
    first = {a: sim.item(a) for a in asins}
    first_reviews = {a: sim.reviews(a, per_asin) if per_asin else [] for a in asins}
    second = {a: sim.item(a) for a in asins}
    second_reviews = {a: sim.reviews(a, per_asin) if per_asin else [] for a in asins}
    reviews = sum(map(len, first_reviews.values())) + sum(map(len, second_reviews.values()))
    bodies1, bodies2 = _bodies(jobs1, first, first_reviews), _bodies(jobs2, second, second_reviews)
    del first, first_reviews, second, second_reviews
    server0 = _server_cpu_s()
    elapsed1, cpu1 = _land_all(jobs1, bodies1, day1)
    server1 = _server_cpu_s()
    elapsed2, cpu2 = _land_all(jobs2, bodies2, day2)
    server2 = _server_cpu_s()
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        rows = conn.execute(text("SELECT count(*) FROM product_monitor.product_metrics_daily")).scalar()
        summaries = conn.execute(text("SELECT count(*) FROM product_monitor.review_summaries")).scalar()
        raw = conn.execute(text("SELECT count(*) FROM staging_raw.raw_events")).scalar()
        alerts = conn.execute(text("SELECT count(*) FROM product_monitor.alerts")).scalar()
        closed = conn.execute(
            text("SELECT count(*) FROM product_monitor.ingest_runs WHERE status = 'succeeded'")
        ).scalar()
    yield {
        "bench": "product_monitor.normalise_promote",
        "items": N_ASINS,
        "batch": BATCH,
        "reviews_per_asin": per_asin,
        "empty_tables_items_per_s": round(N_ASINS / elapsed1),
        "next_day_items_per_s": round(N_ASINS / elapsed2),
        "empty_tables_raw_items_per_s": round((N_ASINS + reviews / 2) / elapsed1),
        "next_day_raw_items_per_s": round((N_ASINS + reviews / 2) / elapsed2),
        "empty_tables_ms_per_job": round(elapsed1 * 1000 / len(jobs1), 2),
        "next_day_ms_per_job": round(elapsed2 * 1000 / len(jobs2), 2),
        "metric_rows": rows,
        "review_summaries": summaries,
        "raw_events": raw,
        "alerts_next_day": alerts,
        "runs_closed": closed,
        "target_items_per_s": 10_000,
        **_cpu_per_job("empty_tables", cpu1, server0, server1, len(jobs1)),
        **_cpu_per_job("next_day", cpu2, server1, server2, len(jobs2)),
    }

    workers = _worker_concurrency()
    _truncate()
    jobs1, jobs2 = _plan_jobs(asins, day1), _plan_jobs(asins, day2)
    wall1, wcpu1, scpu1 = _land_concurrently(jobs1, bodies1, day1, workers)
    wall2, wcpu2, scpu2 = _land_concurrently(jobs2, bodies2, day2, workers)
    with db.transaction() as conn:
        rows_c = conn.execute(text("SELECT count(*) FROM product_monitor.product_metrics_daily")).scalar()
        closed_c = conn.execute(
            text("SELECT count(*) FROM product_monitor.ingest_runs WHERE status = 'succeeded'")
        ).scalar()
    cpus = os.cpu_count() or 1
    yield {
        "bench": "product_monitor.normalise_promote_concurrent",
        "items": N_ASINS,
        "batch": BATCH,
        "reviews_per_asin": per_asin,
        "workers": workers,
        "cpus": cpus,
        "empty_tables_items_per_s": round(N_ASINS / wall1),
        "next_day_items_per_s": round(N_ASINS / wall2),
        **_cpu_per_job("empty_tables", wcpu1, 0.0, scpu1, len(jobs1)),
        **_cpu_per_job("next_day", wcpu2, 0.0, scpu2, len(jobs2)),
        "metric_rows": rows_c,
        "runs_closed": closed_c,
        "target_items_per_s": 10_000,
    }


def _cpu_per_job(prefix: str, worker_s: float, server_from: float | None, server_to: float | None, jobs: int):
    """CPU ms a job of the worker and of the server, and the product items/s this machine's
    CPUs would allow if both were the only work and every CPU were busy (a ceiling)."""
    if server_from is None or server_to is None:
        return {f"{prefix}_worker_cpu_ms_per_job": round(worker_s * 1000 / jobs, 2)}
    worker_ms, server_ms = worker_s * 1000 / jobs, (server_to - server_from) * 1000 / jobs
    return {
        f"{prefix}_worker_cpu_ms_per_job": round(worker_ms, 2),
        f"{prefix}_server_cpu_ms_per_job": round(server_ms, 2),
        f"{prefix}_cpu_ceiling_items_per_s": round(
            BATCH * (os.cpu_count() or 1) * 1000 / (worker_ms + server_ms)
        ),
    }


# ------------------------------------------------------------------ GET product


def _events(asins: list[str], token: str) -> dict[str, dict]:
    from localcloud.events import http_event

    return {
        a: http_event(
            "GET",
            f"/product-monitor/v1/products/{a}",
            headers={"authorization": f"Bearer {token}"},
            route_key="GET /product-monitor/v1/products/{asin}",
            path_parameters={"asin": a},
        )
        for a in asins
    }


def _reads() -> Iterable[dict[str, Any]]:
    import copy

    from sqlalchemy import text

    from functions.product_monitor import api, cachekeys
    from opsdeck import db
    from opsdeck.auth import issue_dev_token

    ctx = LambdaContext("product-monitor-api", 29)
    asins = _asins(N_ASINS)
    token = issue_dev_token("bench", roles=["viewer"])
    events = _events(asins, token)
    asyncio.set_event_loop(asyncio.new_event_loop())

    def get(asin: str) -> tuple[float, str]:
        event = copy.copy(events[asin])
        t = time.perf_counter()
        response = api.handler(event, ctx)
        took = time.perf_counter() - t
        assert response["statusCode"] == 200, response
        return took, response["headers"]["x-cache"]

    from functions.product_monitor import views

    with_cold = os.environ.get("BENCH_PM_COLD") == "1"
    if not with_cold:  # what the ingest left behind: every summary written through by the worker
        for start in range(0, N_ASINS, BATCH):
            with db.transaction() as conn:
                views.write_through(conn, asins[start : start + BATCH])
    hot = asins[0]
    for _ in range(200):
        get(hot)
    samples = [get(hot)[0] for _ in range(3000)]
    yield {"bench": "product_monitor.get_product.cache_hit", "requests": len(samples), **percentiles(samples)}

    rng = random.Random(11)
    weights = [1 / (i + 1) ** 1.1 for i in range(N_ASINS)]
    order = list(range(N_ASINS))
    rng.shuffle(order)  # popularity is not ASIN order
    ranked = [asins[i] for i in order]
    n = 20_000

    def workload(record: bool) -> dict[str, Any]:
        picks = rng.choices(ranked, weights=weights, k=n)
        reads, states, writes = [], {"fresh": 0, "stale": 0, "miss": 0, "bypass": 0}, 0
        for i, asin in enumerate(picks):
            if i % 100 == 99:  # 1 % writes: a new capture of a popular ASIN, then the worker's invalidation
                target = picks[i - 1]
                with db.transaction() as conn:
                    conn.execute(
                        text(
                            "UPDATE product_monitor.product_metrics_daily SET price = price + 0.01, "
                            "captured_at = captured_at + interval '1 second' "
                            "WHERE asin = :a AND date = "
                            "(SELECT max(date) FROM product_monitor.product_metrics_daily WHERE asin = :a)"
                        ),
                        {"a": target},
                    )
                cachekeys.invalidate([target])  # what the worker does after its commit
                with db.transaction() as conn:
                    views.write_through(conn, [target])
                writes += 1
                continue
            took, state = get(asin)
            reads.append(took)
            states[state] += 1
        hits = states["fresh"] + states["stale"]
        return {
            "reads": len(reads),
            "writes": writes,
            "distinct_asins": len(set(picks)),
            "hit_ratio": round(hits / len(reads), 4),
            "states": states,
            **(percentiles(reads) if record else {}),
        }

    warm = workload(record=False)
    measured = workload(record=True)
    yield {
        "bench": "product_monitor.get_product.zipf",
        "asins": N_ASINS,
        "zipf_s": 1.1,
        "cache_start": "empty" if with_cold else "written through by the ingest",
        "warmup_hit_ratio": warm["hit_ratio"],
        **measured,
        "target_hit_ratio": 0.95,
        "target_p95_us": 2000,
    }


# ------------------------------------------------------------------- ingestion


def _ingestion() -> Iterable[dict[str, Any]]:
    import boto3
    from sqlalchemy import text

    from functions.product_monitor import planner, repository, simulator, worker
    from localcloud.events import schedule_event, sqs_record
    from opsdeck import db

    _truncate()
    asins = _asins(INGEST_ASINS, "B0IN")
    with db.transaction() as conn:
        repository.track(conn, asins, "bench", datetime.now(UTC))
    sim = simulator.Simulator(seed=5, rate_per_s=RATE, burst=2)  # 5/s, bursts of 2 tolerated
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="product-monitor-jobs", Attributes={"VisibilityTimeout": "3600"})[
        "QueueUrl"
    ]
    with simulator.serve(simulator.create_app(sim)) as served:
        _configure(
            **simulator.local_environment(served.url),
            PRODUCT_MONITOR_JOBS_QUEUE_URL=url,
            PRODUCT_MONITOR_APIFY_SECRET_ID=None,
            APIFY_RATE_PER_S=str(RATE * CLIENT_MARGIN),
            APIFY_BURST="1",
            APIFY_POLL_WAIT_S="0",
            DB_POOL_SIZE=str(WORKERS + 1),
        )
        failures: list[Any] = []
        started = time.perf_counter()
        plan = planner.handler(
            schedule_event("opsdeck-bench-product-monitor-daily", detail={"kind": "daily"}),
            LambdaContext("product-monitor-planner", 120),
        )

        def consume() -> None:
            idle = 0
            while idle < 3:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
                messages = got.get("Messages", [])
                if not messages:
                    idle += 1
                    time.sleep(0.05)
                    continue
                idle = 0
                m = messages[0]
                event = {
                    "Records": [
                        sqs_record(m["Body"], queue_name="product-monitor-jobs", message_id=m["MessageId"])
                    ]
                }
                result = worker.handler(event, LambdaContext("product-monitor-worker", 600))
                if result["batchItemFailures"]:
                    failures.append(result)  # left on the queue: visible again after the timeout
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        threads = [threading.Thread(target=consume) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    with db.transaction() as conn:
        promoted = conn.execute(
            text("SELECT count(DISTINCT asin) FROM product_monitor.product_metrics_daily")
        ).scalar()
        jobs = conn.execute(text("SELECT status, count(*) FROM product_monitor.ingest_jobs GROUP BY 1")).all()
    fetched = sim.stats.asins_fetched
    answered = sim.stats.requests - sim.stats.throttled
    minimum = max(0, answered - 2) / RATE
    yield {
        "bench": "product_monitor.ingestion",
        "asins": INGEST_ASINS,
        "jobs": len(plan["jobs"]),
        "workers": WORKERS,
        "rate_per_s": RATE,
        "upstream_requests": sim.stats.requests,
        "throttled": sim.stats.throttled,
        "wall_s": round(wall, 2),
        "minimum_s": round(minimum, 2),
        "wall_vs_minimum": round(wall / minimum, 3) if minimum else None,
        "lost": INGEST_ASINS - promoted,
        "duplicated": sum(1 for c in fetched.values() if c > 1),
        "job_failures": len(failures),
        "job_status": {s: c for s, c in jobs},
        "target_wall_vs_minimum": 1.15,
    }


def run() -> Iterable[dict[str, Any]]:
    from moto import mock_aws

    with database(), mock_aws(), quiet_stdout():
        _configure(
            REDIS_URL=bench_redis_url(REDIS_DB),
            AWS_DEFAULT_REGION="us-east-1",
            JWT_ISSUER="opsdeck-local",
            JWT_AUDIENCE="opsdeck",
            JWT_HS256_SECRET="bench-product-monitor-secret-0123456789abcdef",  # noqa: S106 - bench only
            JWT_ALGORITHMS="HS256",
            POWERTOOLS_LOG_LEVEL="ERROR",
            POWERTOOLS_METRICS_NAMESPACE="bench",
        )
        from opsdeck import cache

        cache.client().flushdb()
        results = list(_throughput())
        results += list(_reads())
        results += list(_ingestion())
    yield from results
