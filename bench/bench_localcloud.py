"""Local cloud benchmarks (issue 3).

* ``boot``: ``opsdeck local up`` (a fresh process, embedded PostgreSQL in a temporary root,
  in-process Redis) until ``GET /ops/health`` answers 200 — once cold (database init) and
  ``BENCH_LOCAL_BOOTS`` (3) times warm; target ≤ 2 s warm.
* ``http_round_trip``: ``GET /ops/functions`` over a keep-alive connection to the local HTTP
  port (uvicorn → API Gateway v2 event → Mangum → FastAPI → back), p50/p99 over
  ``BENCH_LOCAL_REQUESTS`` (1,000); beside it the same request through ``LocalCloud.request``
  (no socket) and ``GET /ops/health`` (database + cache round trips).
* ``queue_latency``: one message at a time, send → no-op consumer invoked, batching window 0,
  p50/p95/p99 over ``BENCH_LOCAL_MESSAGES`` (500), sent in-process (``LocalCloud.send``) and
  through the SQS API of the local endpoint (what a function's boto3 does); target p95 ≤ 100 ms.
* ``poller_throughput``: ``BENCH_LOCAL_BACKLOG`` (20,000) queued messages delivered to a no-op
  consumer (batch 10, the default 5 concurrent batches), messages/s; target ≥ 2,000.

Real clock everywhere (what ``opsdeck local up`` runs). Function output is silenced at the fd
level so the JSON lines stay clean.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from bench.support import LAYER, ROOT, database, percentiles, quiet_stdout

_SEEN: dict[str, threading.Event] = {}
_COUNT = {"records": 0}
_COUNT_LOCK = threading.Lock()


def noop(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The no-op consumer: notes what arrived, reports no failure."""
    records = event["Records"]
    with _COUNT_LOCK:
        _COUNT["records"] += len(records)
    for record in records:
        waiter = _SEEN.get(record["body"])
        if waiter is not None:
            waiter.set()
    return {"batchItemFailures": []}


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _ms(samples: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    return {k.replace("_us", "_ms"): round(v / 1000, 3) for k, v in percentiles(samples, points).items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- boot


def _boot_once(root: str, env: dict[str, str]) -> float:
    http, aws = _free_port(), _free_port()
    command = [sys.executable, "-m", "opsdeck_cli", "local", "up", "--root", root, "--quiet"]
    command += ["--port", str(http), "--aws-port", str(aws)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"opsdeck local up exited: {process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/ops/health", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            if time.perf_counter() - started > 120:
                raise RuntimeError("opsdeck local up did not answer within 120 s")
            time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(timeout=60)


def boot() -> Iterator[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(LAYER), str(ROOT), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="opsdeck-bench-local-") as root:
        cold = _boot_once(root, env)
        warm = [_boot_once(root, env) for _ in range(_int_env("BENCH_LOCAL_BOOTS", 3))]
    yield {
        "metric": "boot_to_first_200",
        "subject": "opsdeck local up → GET /ops/health 200 (embedded PostgreSQL, in-process Redis)",
        "cold_s": round(cold, 3),
        "warm_s": [round(w, 3) for w in warm],
        "value": round(statistics.median(warm), 3),
        "unit": "s",
        "target_s": 2.0,
    }


# ---------------------------------------------------------------------- HTTP


def http_round_trip(database_url: str) -> Iterator[dict]:
    import httpx

    from localcloud import LocalCloud

    n = _int_env("BENCH_LOCAL_REQUESTS", 1000)
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as root, quiet_stdout():
        cloud = LocalCloud(
            root=root,
            database_url=database_url,
            redis_url="fakeredis://",
            http=True,
            functions=["ops-api"],
            deploy=False,
        )
        with cloud, httpx.Client(base_url=cloud.base_url) as client:
            for name, call in (
                ("socket", lambda: client.get("/ops/functions").status_code),
                ("in_process", lambda: cloud.request("GET", "/ops/functions")[0]),
                ("socket_health", lambda: client.get("/ops/health").status_code),
            ):
                for _ in range(50):
                    assert call() == 200
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    status = call()
                    samples.append(time.perf_counter() - started)
                    assert status == 200
                results[name] = samples
    yield {
        "metric": "http_round_trip",
        "subject": "GET /ops/functions over the local port (uvicorn → API GW v2 event → Mangum → FastAPI)",
        "requests": n,
        **_ms(results["socket"], (50, 99)),
        "value": _ms(results["socket"], (50,))["p50_ms"],
        "unit": "ms",
        "in_process": _ms(results["in_process"], (50, 99)),
        "with_database_and_cache": {"route": "GET /ops/health", **_ms(results["socket_health"], (50, 99))},
    }


# --------------------------------------------------------------------- queues


def _bench_catalog() -> tuple:
    from functions.catalog import Function, Queue

    return (
        Function(
            name="ops-bench-noop",
            capability="ops",
            handler="bench.bench_localcloud.noop",
            trigger=Queue(name="ops-bench-jobs", batch_size=10, batching_window_s=0, visibility_timeout_s=60),
        ),
    )


def queue_latency() -> Iterator[dict]:
    import boto3

    from localcloud import LocalCloud

    n = _int_env("BENCH_LOCAL_MESSAGES", 500)
    with (
        tempfile.TemporaryDirectory() as root,
        quiet_stdout(),
        LocalCloud(root=root, catalog=_bench_catalog()) as cloud,
    ):
        sqs = boto3.session.Session().client("sqs", endpoint_url=cloud.aws_url, region_name="us-east-1")
        url = cloud.queue_url("ops-bench-jobs")
        paths = {
            "in_process": lambda body: cloud.send("ops-bench-jobs", body),
            "sqs_api": lambda body: sqs.send_message(QueueUrl=url, MessageBody=body),
        }
        results: dict[str, list[float]] = {}
        for name, send in paths.items():
            samples = []
            for i in range(n + 20):
                body = f"{name}-{i}"
                waiter = _SEEN[body] = threading.Event()
                started = time.perf_counter()
                send(body)
                if not waiter.wait(10):
                    raise RuntimeError(f"{body} was not delivered within 10 s")
                if i >= 20:  # warm-up
                    samples.append(time.perf_counter() - started)
                del _SEEN[body]
            results[name] = samples
    yield {
        "metric": "queue_latency",
        "subject": "send → no-op consumer invoked (batching window 0), LocalCloud.send",
        "messages": n,
        **_ms(results["in_process"]),
        "value": _ms(results["in_process"])["p95_ms"],
        "unit": "ms",
        "target_p95_ms": 100,
        "via_sqs_api": _ms(results["sqs_api"]),
    }


def poller_throughput() -> Iterator[dict]:
    from localcloud import LocalCloud

    n = _int_env("BENCH_LOCAL_BACKLOG", 20_000)
    with (
        tempfile.TemporaryDirectory() as root,
        quiet_stdout(),
        LocalCloud(root=root, catalog=_bench_catalog()) as cloud,
    ):
        [mapping] = cloud.mappings
        mapping.enabled = False  # load the backlog first, then let the poller at it
        for i in range(n):
            cloud.send("ops-bench-jobs", f"m{i}")
        _COUNT["records"] = 0
        started = time.perf_counter()
        with cloud.engine.lock:
            mapping.enabled = True
            cloud.engine.changed.notify_all()
        while _COUNT["records"] < n:
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"only {_COUNT['records']} of {n} delivered in 300 s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        invocations = len([e for e in cloud.journal() if e["function"] == "ops-bench-noop"])
    yield {
        "metric": "poller_throughput",
        "subject": "backlog → no-op consumer, batch 10, 5 concurrent batches",
        "messages": n,
        "invocations": invocations,
        "seconds": round(elapsed, 3),
        "value": round(n / elapsed),
        "unit": "msg/s",
        "target": 2000,
    }


def run() -> Iterator[dict]:
    yield from boot()
    with database() as url:
        yield from http_round_trip(url)
    yield from queue_latency()
    yield from poller_throughput()
