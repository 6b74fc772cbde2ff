"""Deployment-wide counters for ``GET /v1/metrics`` (Prometheus text), kept in Redis.

Every container adds its observations to the same Redis hashes (one pipelined round trip per
request: ``HINCRBY``/``HINCRBYFLOAT``), so the endpoint shows the whole deployment, not the
container that happened to answer. Ingestion totals (jobs, items, Apify cost) come from the
database at scrape time: they are durable and exact. When Redis is down, observations are
dropped (the API keeps answering) and the endpoint says so (``pm_telemetry_up 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsdeck import cache

HTTP = "pm:telemetry:http"
CACHE = "pm:telemetry:cache"
UPSTREAM = "pm:telemetry:upstream"
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


def observe_request(
    route: str, method: str, status: int, duration_ms: float, cache_state: str | None
) -> None:
    import redis

    label = f"{method} {route}|{status}"
    try:
        pipe = cache.client().pipeline(transaction=False)
        pipe.hincrby(HTTP, f"count|{label}", 1)
        pipe.hincrbyfloat(HTTP, f"sum|{method} {route}", duration_ms / 1000)
        bucket = next((b for b in BUCKETS_MS if duration_ms <= b), None)
        pipe.hincrby(HTTP, f"le|{method} {route}|{bucket if bucket is not None else '+Inf'}", 1)
        if cache_state is not None:
            pipe.hincrby(CACHE, cache_state, 1)
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
        "# HELP pm_upstream_cost_usd_total Apify usageTotalUsd of every run (database)",
        "# TYPE pm_upstream_cost_usd_total counter",
        f"pm_upstream_cost_usd_total {ingest['cost_usd']}",
        "# HELP pm_upstream_throttled_total Apify 429 answers seen by the workers",
        "# TYPE pm_upstream_throttled_total counter",
        f"pm_upstream_throttled_total {data[UPSTREAM].get('throttled', 0)}",
    ]
    return "\n".join(lines) + "\n"
