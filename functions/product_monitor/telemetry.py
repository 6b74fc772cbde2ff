"""Deployment-wide counters for ``GET /v1/metrics`` (Prometheus text), kept in Redis.

Every container adds its observations to the same Redis hashes (``HINCRBY``/``HINCRBYFLOAT``),
so the endpoint shows the whole deployment, not the container that happened to answer. A
container batches its counts and sends them at most once a second (or every 200 distinct
counters) in one pipelined round trip: a request does not pay a Redis write, and a container
that is reaped loses at most its last second of counts. Ingestion totals (jobs, items, Apify
cost) come from the database at scrape time: they are durable and exact. When Redis is down, observations are
dropped (the API keeps answering) and the endpoint says so (``pm_telemetry_up 0``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from opsdeck import cache

HTTP = "pm:telemetry:http"
CACHE = "pm:telemetry:cache"
UPSTREAM = "pm:telemetry:upstream"
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


#: observations waiting in this container: (hash, field) → increment
_pending: dict[tuple[str, str], float] = {}
_pending_lock = threading.Lock()
_last_flush = 0.0
FLUSH_EVERY_S = 1.0
FLUSH_EVERY_N = 200


def observe_request(
    route: str, method: str, status: int, duration_ms: float, cache_state: str | None
) -> None:
    """Count one request; the container's counts reach Redis at most ``FLUSH_EVERY_S`` later
    (one pipelined round trip per flush, not per request)."""
    global _last_flush
    key = f"{method} {route}"
    bucket = next((b for b in BUCKETS_MS if duration_ms <= b), None)
    with _pending_lock:
        for field_, inc in (
            ((HTTP, f"count|{key}|{status}"), 1),
            ((HTTP, f"sum|{key}"), duration_ms / 1000),
            ((HTTP, f"le|{key}|{bucket if bucket is not None else '+Inf'}"), 1),
            *((((CACHE, cache_state), 1),) if cache_state is not None else ()),
        ):
            _pending[field_] = _pending.get(field_, 0) + inc
        now = time.monotonic()
        due = now - _last_flush >= FLUSH_EVERY_S or len(_pending) >= FLUSH_EVERY_N
    if due:
        flush()


def flush() -> None:
    """Send this container's pending counts (dropped if Redis is unreachable)."""
    import redis

    global _last_flush
    with _pending_lock:
        batch = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    if not batch:
        return
    try:
        pipe = cache.client().pipeline(transaction=False)
        for (name, field_), inc in batch.items():
            if isinstance(inc, float) and not inc.is_integer():
                pipe.hincrbyfloat(name, field_, inc)
            else:
                pipe.hincrby(name, field_, int(inc))
        pipe.execute()
    except (redis.RedisError, OSError):
        pass


def observe_upstream(throttled: int = 0, retried_jobs: int = 0) -> None:
    import redis

    try:
        pipe = cache.client().pipeline(transaction=False)
        if throttled:
            pipe.hincrby(UPSTREAM, "throttled", throttled)
        if retried_jobs:
            pipe.hincrby(UPSTREAM, "retried_jobs", retried_jobs)
        pipe.execute()
    except (redis.RedisError, OSError):
        pass


def _read() -> tuple[dict[str, dict[str, str]], bool]:
    import redis

    flush()
    try:
        pipe = cache.client().pipeline(transaction=False)
        for name in (HTTP, CACHE, UPSTREAM):
            pipe.hgetall(name)
        raw = pipe.execute()
    except (redis.RedisError, OSError):
        return {HTTP: {}, CACHE: {}, UPSTREAM: {}}, False
    decoded = [{k.decode(): v.decode() for k, v in h.items()} for h in raw]
    return dict(zip((HTTP, CACHE, UPSTREAM), decoded, strict=True)), True


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(ingest: Mapping[str, Any]) -> str:
    """The Prometheus text exposition (format 0.0.4)."""
    data, up = _read()
    lines = [
        "# HELP pm_telemetry_up 1 when the shared counters (Redis) could be read",
        "# TYPE pm_telemetry_up gauge",
        f"pm_telemetry_up {1 if up else 0}",
        "# HELP pm_http_requests_total HTTP requests by route and status, all containers",
        "# TYPE pm_http_requests_total counter",
    ]
    buckets: dict[str, dict[str, int]] = {}
    sums: dict[str, float] = {}
    for field, value in sorted(data[HTTP].items()):
        kind, _, rest = field.partition("|")
        if kind == "count":
            route, _, status = rest.rpartition("|")
            method, _, path = route.partition(" ")
            labels = f'method="{_esc(method)}",route="{_esc(path)}",status="{status}"'
            lines.append(f"pm_http_requests_total{{{labels}}} {value}")
        elif kind == "le":
            route, _, le = rest.rpartition("|")
            buckets.setdefault(route, {})[le] = int(value)
        elif kind == "sum":
            sums[rest] = float(value)
    lines += [
        "# HELP pm_http_request_duration_seconds request latency in the function, all containers",
        "# TYPE pm_http_request_duration_seconds histogram",
    ]
    for route in sorted(buckets):
        method, _, path = route.partition(" ")
        labels = f'method="{_esc(method)}",route="{_esc(path)}"'
        running = 0
        for b in BUCKETS_MS:
            running += buckets[route].get(str(b), 0)
            lines.append(f'pm_http_request_duration_seconds_bucket{{{labels},le="{b / 1000}"}} {running}')
        running += buckets[route].get("+Inf", 0)
        lines.append(f'pm_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {running}')
        lines.append(f"pm_http_request_duration_seconds_sum{{{labels}}} {sums.get(route, 0.0)}")
        lines.append(f"pm_http_request_duration_seconds_count{{{labels}}} {running}")
    lines += [
        "# HELP pm_cache_lookups_total cache-first reads by outcome",
        "# TYPE pm_cache_lookups_total counter",
    ]
    for state in ("fresh", "stale", "miss", "bypass"):
        lines.append(f'pm_cache_lookups_total{{result="{state}"}} {data[CACHE].get(state, 0)}')
    hits = int(data[CACHE].get("fresh", 0)) + int(data[CACHE].get("stale", 0))
    total = hits + int(data[CACHE].get("miss", 0)) + int(data[CACHE].get("bypass", 0))
    lines += [
        "# HELP pm_cache_hit_ratio (fresh + stale) / all cache-first reads",
        "# TYPE pm_cache_hit_ratio gauge",
        f"pm_cache_hit_ratio {hits / total if total else 0}",
        "# HELP pm_ingest_jobs_total ingest jobs by final status (database)",
        "# TYPE pm_ingest_jobs_total counter",
        f'pm_ingest_jobs_total{{status="succeeded"}} {ingest["jobs_succeeded"]}',
        f'pm_ingest_jobs_total{{status="failed"}} {ingest["jobs_failed"]}',
        "# HELP pm_ingest_items_total normalised items promoted / rejected (database)",
        "# TYPE pm_ingest_items_total counter",
        f'pm_ingest_items_total{{result="ok"}} {ingest["items_ok"]}',
        f'pm_ingest_items_total{{result="malformed"}} {ingest["items_failed"]}',
        "# HELP pm_ingest_reviews_total review items read into summaries / rejected (database)",
        "# TYPE pm_ingest_reviews_total counter",
        f'pm_ingest_reviews_total{{result="ok"}} {ingest["reviews_ok"]}',
        f'pm_ingest_reviews_total{{result="malformed"}} {ingest["reviews_failed"]}',
        "# HELP pm_upstream_cost_usd_total Apify usageTotalUsd of every run (database)",
        "# TYPE pm_upstream_cost_usd_total counter",
        f"pm_upstream_cost_usd_total {ingest['cost_usd']}",
        "# HELP pm_upstream_throttled_total Apify 429 answers seen by the workers",
        "# TYPE pm_upstream_throttled_total counter",
        f"pm_upstream_throttled_total {data[UPSTREAM].get('throttled', 0)}",
    ]
    return "\n".join(lines) + "\n"
