"""snacks in the local cloud: the catalog secret holds generated signing keys, the demo seeds
through the local API Gateway, and the flush schedule fires through the scheduler."""

from __future__ import annotations

import json

from functions.snacks import demo


def call(cloud, method, path, token=None, body=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    status, _headers, raw = cloud.request(method, path, headers=headers, body=body)
    return status, (json.loads(raw) if raw else None)


def test_demo_then_flush_schedule_then_reconcile_after_redis_loss(local_cloud):
    cloud = local_cloud
    status, keys = call(cloud, "GET", "/snacks/.well-known/jwks.json")
    assert status == 200 and keys["keys"][0]["kid"] == "local-1"
    demo.seed(cloud)
    status, pair = call(
        cloud, "POST", "/snacks/auth/token/", body={"username": demo.ADMIN[0], "password": demo.ADMIN[1]}
    )
    assert status == 200
    admin = pair["access"]
    status, listed = call(cloud, "GET", "/snacks/snacks/", admin)
    counts = {s["name"]: (s["like_count"], s["hate_count"]) for s in listed["items"]}
    assert counts["Choco Pie"] == (4, 0) and counts["Shrimp Cracker"] == (1, 2)
    result = cloud.fire("snacks-reactions-flush")
    assert result["flushed"] >= 5
    status, listed = call(cloud, "GET", "/snacks/snacks/", admin)
    assert [s["name"] for s in listed["items"]][:2] == ["Choco Pie", "Matcha Cookie"]  # no hates first
    from opsdeck import cache

    cache.client().flushdb()
    assert cloud.fire("snacks-reactions-flush")["reconciled_all"] is True
    status, listed = call(cloud, "GET", "/snacks/snacks/", admin)
    assert {s["name"]: (s["like_count"], s["hate_count"]) for s in listed["items"]} == counts
    status, orders = call(cloud, "GET", "/snacks/orders/", admin)
    assert sorted(o["status"] for o in orders["items"]) == ["canceled", "created", "ordered"]
