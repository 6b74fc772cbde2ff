"""product_monitor in the local cloud (contract A): the Apify simulator mounted at
``/_sim/product_monitor``, the token from the local Secrets Manager, the daily schedule fired,
jobs through the SQS event-source-mapping emulation into the worker, and a poison message in
the DLQ after ``max_receive_count`` receives."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import jwt

from functions import catalog
from functions.product_monitor import ingest, repository


def bearer(cloud, *roles: str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "opsdeck-local",
        "aud": "opsdeck",
        "sub": "u-1",
        "iat": now,
        "exp": now + 600,
        "roles": list(roles),
    }
    return {"authorization": "Bearer " + jwt.encode(claims, cloud.env["JWT_HS256_SECRET"], algorithm="HS256")}


ASINS = [f"B0LC{i:06d}" for i in range(120)]


def test_daily_schedule_fetches_every_tracked_asin_through_queue_and_worker(local_cloud):
    from opsdeck import db

    ingest.reset_clients()
    sim = local_cloud.simulator_urls["product_monitor"]
    env = local_cloud.function_env("product-monitor-worker")
    assert env["APIFY_API_URL"] == sim and "APIFY_TOKEN" not in env
    assert env["PRODUCT_MONITOR_APIFY_SECRET_ID"]  # the token comes from Secrets Manager
    with db.transaction() as conn:
        repository.track(conn, ASINS, "test", datetime.now(UTC))

    planned = local_cloud.fire("product-monitor-daily")
    assert planned["asins"] == 120 and len(planned["jobs"]) == 2
    local_cloud.run_until_idle(max_seconds=600)

    with db.transaction() as conn:
        run = repository.run_view(conn, uuid.UUID(planned["run_id"]))
    assert run["status"] == "succeeded" and run["items_ok"] == 120
    assert local_cloud.depth("product-monitor-jobs") == (0, 0)
    stats = httpx.get(f"{sim}/_control/stats", timeout=5).json()
    assert stats["distinct_asins"] == 120

    # and the API reads it through the local API Gateway, cache-first
    headers = bearer(local_cloud, "viewer")
    status, h1, body = local_cloud.request("GET", f"/product-monitor/v1/products/{ASINS[0]}", headers=headers)
    assert (
        status == 200 and json.loads(body)["latest"]["price"] and h1["x-cache"] == "fresh"
    )  # written through
    status, h2, _ = local_cloud.request("GET", f"/product-monitor/v1/products/{ASINS[0]}", headers=headers)
    assert status == 200 and h2["x-cache"] == "fresh" and h2["etag"] == h1["etag"]
    assert local_cloud.request("GET", f"/product-monitor/v1/products/{ASINS[0]}")[0] == 401
    assert local_cloud.request("GET", "/product-monitor/v1/health")[0] == 200
    ingest.reset_clients()


def test_a_poison_message_reaches_the_dlq_without_blocking_jobs(local_cloud):
    ingest.reset_clients()
    max_receives = catalog.by_name()["product-monitor-worker"].trigger.max_receive_count
    local_cloud.send("product-monitor-jobs", '{"job_id": ')
    local_cloud.run_until_idle(max_seconds=6 * 3600 * max_receives)
    assert local_cloud.depth("product-monitor-jobs") == (0, 0)
    assert local_cloud.depth("product-monitor-jobs-dlq") == (1, 0)
    ingest.reset_clients()


def test_demo_seeds_and_the_schedules_fill_the_api(local_cloud):
    from functions.product_monitor import demo

    ingest.reset_clients()
    done = local_cloud.seed_demo()
    assert "demo data: product_monitor" in done and "fired: product-monitor-daily" in done
    local_cloud.run_until_idle(max_seconds=600)
    headers = bearer(local_cloud, "viewer")
    status, _, body = local_cloud.request(
        "GET", f"/product-monitor/v1/competitions/{demo.ASINS[0]}/report", headers=headers
    )
    assert status == 200 and json.loads(body)["report"]["competitors"] == len(demo.RIVALS)
    ingest.reset_clients()
