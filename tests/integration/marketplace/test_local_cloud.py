"""The marketplace in the local cloud (contract A): simulator mounted at /_sim/marketplace,
credentials from its Secrets Manager, schedules fired, HTTP through the local API Gateway with
its JWT authorizer, and the API's hand-over to the sync function by asynchronous Lambda invoke."""

from __future__ import annotations

import json
import time

import httpx
import jwt

from functions.marketplace import slack, spapi


def bearer(cloud, *roles: str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "opsdeck-local",
        "aud": "opsdeck",
        "sub": "op-1",
        "iat": now,
        "exp": now + 600,
        "roles": list(roles),
    }
    return {"authorization": "Bearer " + jwt.encode(claims, cloud.env["JWT_HS256_SECRET"], algorithm="HS256")}


def test_demo_shop_syncs_and_serves_through_the_local_cloud(local_cloud):
    spapi.reset()
    slack.reset()
    sim = local_cloud.simulator_urls["marketplace"]
    env = local_cloud.function_env("marketplace-orders-sync")
    assert env["SPAPI_ENDPOINT"] == sim + "/spapi"
    assert "SPAPI_CLIENT_SECRET" not in env and env["MARKETPLACE_SPAPI_SECRET_ID"]  # from Secrets Manager

    orders = local_cloud.fire("marketplace-orders-sync")
    inventory = local_cloud.fire("marketplace-inventory-sync")

    assert orders["status"] == "succeeded" and orders["new"] > 0, orders
    assert (inventory["status"], inventory["fetched"]) == ("succeeded", 25)
    status, _, body = local_cloud.request("GET", "/marketplace/orders", query={"limit": 200})
    assert status == 200
    assert len(json.loads(body)["orders"]) == orders["new"]
    messages = httpx.get(f"{sim}/_control/slack/messages", timeout=5).json()["messages"]
    assert messages and orders["notified"] == orders["new"]

    assert local_cloud.request("POST", "/marketplace/orders/sync")[0] == 401  # the gateway's JWT authorizer
    assert (
        local_cloud.request("POST", "/marketplace/orders/sync", headers=bearer(local_cloud, "viewer"))[0]
        == 403
    )
    status, _, body = local_cloud.request(
        "POST", "/marketplace/orders/sync", headers=bearer(local_cloud, "marketplace-operator")
    )
    assert status == 200 and json.loads(body)["status"] == "succeeded"


def test_api_hands_unfinished_work_to_the_sync_function(local_cloud):
    from opsdeck import cache

    spapi.reset()
    slack.reset()
    sim = local_cloud.simulator_urls["marketplace"]
    httpx.post(
        f"{sim}/_control/quota", json={"operation": "getOrders", "rate": 0.0167, "burst": 0}, timeout=5
    )

    status, headers, body = local_cloud.request(
        "POST", "/marketplace/orders/sync", headers=bearer(local_cloud, "marketplace-operator")
    )
    answer = json.loads(body)
    assert status == 202, answer
    assert (answer["status"], answer["continues"]) == ("deferred", "background run")
    assert headers["location"] == f"/marketplace/logs?run_id={answer['run_id']}"

    # The quota recovers (simulator and shared buckets); the queued asynchronous invocation runs.
    httpx.post(f"{sim}/_control/quota", json={"reset": True}, timeout=5)
    for key in cache.client().scan_iter("marketplace:spapi:*"):
        cache.client().delete(key)
    local_cloud.run_until_idle()
    handed = [e for e in local_cloud.journal() if e["function"] == "marketplace-orders-sync"]
    assert [e["trigger"] for e in handed] == ["invoke"] and handed[0]["outcome"] == "ok", handed
    status, _, logs = local_cloud.request("GET", "/marketplace/logs", query={"kind": "orders"})
    assert [(r["trigger"], r["status"]) for r in json.loads(logs)["logs"]] == [
        ("api-continuation", "succeeded"),
        ("api", "deferred"),
    ]
