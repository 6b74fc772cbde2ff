"""Marketplace ingestion: ``python -m bench marketplace`` (JSON lines).

Database: ``bench.support.database()`` (a throwaway migrated database on ``BENCH_DATABASE_URL``,
the local PostgreSQL, or an embedded one). Redis: ``BENCH_REDIS_URL`` (database 14, flushed),
else the in-process fake. The SP-API simulator runs in-process over
real HTTP (uvicorn on 127.0.0.1:0), as in the tests.

1. **throughput** — 10,000 orders over 100 pages of 100, rate limiting off (simulator and
   client). ``fetch``: the 100 ``getOrders`` pages through the real client. Then, on the same
   bodies, ``parse + bulk upsert`` (``domain`` parsing + ``repository.upsert_orders``: one
   ``INSERT … SELECT FROM unnest … ON CONFLICT`` per 2,000 rows) beside the **per-row
   baseline** (same parsing, one ``INSERT … ON CONFLICT`` statement per order, as the seed's
   ``crud.upsert_order`` did), each into an empty table; plus the bulk re-ingest of the same
   orders (all skipped by the version guard) and the whole scheduled sync end to end
   (Orders 2026-01-01: items embedded, so 100 requests).
2. **rate limits on** — the simulator enforces the published rate/burst of every operation;
   its ``rate_scale`` knob refills them N times faster (and says so in
   ``x-amzn-RateLimit-Limit``) and the client is told the same (``SPAPI_RATE_SCALE``), so a
   scenario that takes minutes at Amazon's rates takes seconds while every ratio holds.
   Reported: requests the simulator throttled (= requests beyond the published rate/burst;
   it tolerates 20 ms of arrival jitter), the wall time of the real scheduled sync, and the
   minimum the limits allow. The sync is sequential (all pages, then the items), so that
   minimum is Σ over operations of ``max(0, requests - burst) / rate``; the client paces 2 %
   below the published rate (``SPAPI_RATE_MARGIN``), so ~1.02 is the floor of the ratio.
   Scenarios: v0 (30 pages of 10 + 300 ``getOrderItems``, scale 60) and 2026-01-01 (40 pages
   of 10, scale 180) — about 20 s each.

Figures from a shared/noisy machine are not comparable; record them on a quiet one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from bench.support import bench_redis_url, configure, database, quiet_stdout
from tests.support import LambdaContext

ORDERS = 10_000
PAGE = 100


# ------------------------------------------------------------------- resources


#: the Redis database of this bench (``BENCH_REDIS_URL``'s is replaced)
REDIS_DB = 14


def _configure(**values: str | None) -> None:
    from functions.marketplace import slack, spapi

    configure((spapi.reset, slack.reset), **values)


def _scheduled_event() -> dict[str, Any]:
    from localcloud.events import schedule_event

    return schedule_event("opsdeck-bench-marketplace-orders-schedule")


def _truncate() -> None:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(
            text(
                "TRUNCATE marketplace.orders, marketplace.order_items, marketplace.notifications, "
                "marketplace.sync_runs, marketplace.sync_state RESTART IDENTITY CASCADE"
            )
        )


def _clear_buckets() -> None:
    from opsdeck import cache

    client = cache.client()
    for key in list(client.scan_iter("marketplace:*")):
        client.delete(key)


# ------------------------------------------------------------------ throughput


def _per_row_upsert(orders: list[Any], now) -> None:
    """The baseline: one INSERT … ON CONFLICT round trip per order (same version guard)."""
    from sqlalchemy.dialects.postgresql import insert

    from functions.marketplace import repository
    from opsdeck import db

    table = repository.orders
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.amazon_order_id],
        set_={
            c: stmt.excluded[c]
            for c in repository.order_row(orders[0], run_id=None, api_version="v0", now=now)
        },
        where=table.c.last_update_date < stmt.excluded.last_update_date,
    )
    with db.transaction() as conn:
        for order in orders:
            conn.execute(stmt, repository.order_row(order, run_id=None, api_version="v0", now=now))


def _throughput() -> Iterable[dict[str, Any]]:
    from datetime import UTC, datetime

    from functions.marketplace import domain, repository, settings, simulator, spapi
    from opsdeck import db

    sim = simulator.Simulator(seed=11, skus=20, enforce_limits=False)
    now = time.time()
    sim.add_orders(ORDERS, start=now - 20 * 3600, end=now - 600)
    with simulator.serve(simulator.create_app(sim)) as served:
        _configure(
            **simulator.local_environment(served.url),
            SPAPI_RATE_LIMIT="false",
            SPAPI_PAGE_SIZE=str(PAGE),
            SPAPI_ORDERS_API=None,
        )
        config = settings.load()
        client = spapi.client(config, settings.credentials(config))
        window = domain.Window(
            datetime.fromtimestamp(now - 86_400, UTC),
            datetime.fromtimestamp(now - 300, UTC).replace(microsecond=0),
        )
        params: dict[str, Any] = {
            "MarketplaceIds": config.spapi_marketplace_id,
            "LastUpdatedAfter": domain.iso(window.start),
            "LastUpdatedBefore": domain.iso(window.end),
            "MaxResultsPerPage": PAGE,
        }
        bodies = []
        started = time.perf_counter()
        while True:
            body = client.get("getOrders", "/orders/v0/orders", params)
            bodies.append(body)
            token = body["payload"].get("NextToken")
            if not token:
                break
            params = {"MarketplaceIds": config.spapi_marketplace_id, "NextToken": token}
        fetch_s = time.perf_counter() - started
        count = sum(len(b["payload"]["Orders"]) for b in bodies)
        yield {
            "metric": "fetch_pages",
            "value": round(fetch_s, 3),
            "unit": "s",
            "pages": len(bodies),
            "orders": count,
        }
        yield {"metric": "fetch_orders_per_s", "value": round(count / fetch_s), "unit": "orders/s"}

        stamp = datetime.now(UTC)
        _truncate()
        started = time.perf_counter()
        orders = [o for b in bodies for o in domain.parse_v0_orders_page(b).orders]
        with db.transaction() as conn:
            written = repository.upsert_orders(conn, orders, run_id=None, api_version="v0", now=stamp)
        bulk_s = time.perf_counter() - started
        assert written.written == len(written.new_ids) == count
        yield {
            "metric": "parse_bulk_upsert_orders_per_s",
            "value": round(count / bulk_s),
            "unit": "orders/s",
            "seconds": round(bulk_s, 3),
            "target": 10_000,
        }

        started = time.perf_counter()
        again = [o for b in bodies for o in domain.parse_v0_orders_page(b).orders]
        with db.transaction() as conn:
            skipped = repository.upsert_orders(conn, again, run_id=None, api_version="v0", now=stamp)
        reingest_s = time.perf_counter() - started
        assert skipped.written == 0
        yield {
            "metric": "parse_bulk_reingest_unchanged_orders_per_s",
            "value": round(count / reingest_s),
            "unit": "orders/s",
            "seconds": round(reingest_s, 3),
        }

        _truncate()
        started = time.perf_counter()
        baseline = [o for b in bodies for o in domain.parse_v0_orders_page(b).orders]
        _per_row_upsert(baseline, stamp)
        row_s = time.perf_counter() - started
        yield {
            "metric": "parse_per_row_upsert_orders_per_s",
            "value": round(count / row_s),
            "unit": "orders/s",
            "seconds": round(row_s, 3),
        }
        yield {"metric": "bulk_vs_per_row_speedup", "value": round(row_s / bulk_s, 1), "unit": "x"}

        # The scheduled sync end to end: Orders 2026-01-01 (items embedded), Slack digest included.
        _truncate()
        _configure(SPAPI_ORDERS_API="2026-01-01")
        from functions.marketplace import orders_sync

        started = time.perf_counter()
        with quiet_stdout():  # the function's log lines would mix with the JSON results
            result = orders_sync.handler(
                _scheduled_event(), LambdaContext("marketplace-orders-sync", timeout_s=900)
            )
        e2e_s = time.perf_counter() - started
        assert (result["status"], result["new"]) == ("succeeded", count), result
        yield {
            "metric": "scheduled_sync_2026_orders_per_s",
            "value": round(count / e2e_s),
            "unit": "orders/s",
            "seconds": round(e2e_s, 3),
            "pages": result["pages"],
            "items": result["items_fetched"],
        }


# ------------------------------------------------------------------- rate limits


def _rate_scenario(version: str, pages: int, per_page: int, scale: float) -> Iterable[dict[str, Any]]:
    from functions.marketplace import orders_sync, simulator

    sim = simulator.Simulator(seed=5, skus=20, rate_scale=scale)
    now = time.time()
    sim.add_orders(pages * per_page, start=now - 6 * 3600, end=now - 600)
    with simulator.serve(simulator.create_app(sim)) as served:
        _configure(
            **simulator.local_environment(served.url),
            SPAPI_RATE_LIMIT="true",
            SPAPI_RATE_SCALE=str(scale),
            SPAPI_PAGE_SIZE=str(per_page),
            SPAPI_ORDERS_API=version,
        )
        _truncate()
        _clear_buckets()
        sim.reset_limits()
        started = time.perf_counter()
        with quiet_stdout():
            result = orders_sync.handler(
                _scheduled_event(), LambdaContext("marketplace-orders-sync", timeout_s=900)
            )
        wall = time.perf_counter() - started
    assert result["status"] == "succeeded", result
    counts = {op: s.requests for op, s in sim.stats.items()}
    throttled = sum(s.throttled for s in sim.stats.values())
    minimum = simulator.published_minimum_s(counts, scale)
    name = "v0" if version == "v0" else "v2026"
    yield {
        "metric": f"rate_{name}_requests_beyond_published_limits",
        "value": throttled,
        "unit": "requests",
        "target": 0,
        "requests": counts,
        "rate_scale": scale,
    }
    yield {
        "metric": f"rate_{name}_wall_s",
        "value": round(wall, 3),
        "unit": "s",
        "minimum_s": round(minimum, 3),
        "orders": result["fetched"],
    }
    yield {
        "metric": f"rate_{name}_wall_vs_minimum",
        "value": round(wall / minimum, 3) if minimum else None,
        "unit": "ratio",
        "target": "<= 1.10",
        "at_amazon_rates_s": round(simulator.published_minimum_s(counts), 1),
    }


# -------------------------------------------------------------------------- run


def run() -> Iterable[dict[str, Any]]:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with database() as url:
        _configure(DATABASE_URL=url, REDIS_URL=bench_redis_url(REDIS_DB))
        from opsdeck import cache

        if not bench_redis_url(REDIS_DB).startswith("fakeredis"):
            cache.client().flushdb()
        yield from _throughput()
        yield from _rate_scenario("v0", pages=30, per_page=10, scale=60)
        yield from _rate_scenario("2026-01-01", pages=40, per_page=10, scale=180)
