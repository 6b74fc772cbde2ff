"""The marketplace HTTP API through Mangum, with API Gateway HTTP API events (sample files from events/)."""

from __future__ import annotations

import base64
import time

from functions.marketplace import api, sync
from localcloud.events import http_event
from opsdeck import cache
from tests.integration.marketplace.conftest import OPERATOR, Marketplace
from tests.support import LambdaContext, env, load_event

ORDER_ROUTE = "GET /marketplace/orders/{amazon_order_id}"


def get_order(marketplace: Marketplace, order_id: str):
    return marketplace.get(
        f"/marketplace/orders/{order_id}",
        route_key=ORDER_ROUTE,
        path_parameters={"amazon_order_id": order_id},
    )


# ------------------------------------------------------------------------ health


def test_health_is_degraded_until_a_sync_succeeded(marketplace: Marketplace):
    status, headers, body = marketplace.http(load_event("marketplace-api/health.json"))
    assert status == 200
    assert headers["x-request-id"] == "bWt0LWhlYWx0aA=="
    assert (body["status"], body["db"], body["cache"]) == ("degraded", "connected", "connected")
    assert body["last_successful_sync"]["orders"] == {"finished_at": None, "age_s": None}

    marketplace.orders(1)
    marketplace.sync_orders()
    status, _, body = marketplace.http(load_event("marketplace-api/health.json"))
    assert body["status"] == "ok"
    assert 0 <= body["last_successful_sync"]["orders"]["age_s"] < 60


def test_health_without_database_is_503_problem():
    with env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", REDIS_URL="fakeredis://"):
        response = api.handler(load_event("marketplace-api/health.json"), LambdaContext("marketplace-api"))
    assert response["statusCode"] == 503
    assert response["headers"]["content-type"] == "application/problem+json"
    assert '"db":"disconnected"' in response["body"].replace(" ", "")


# ------------------------------------------------------------------------ orders


def test_orders_filtered_by_status_and_purchase_date_in_pages(marketplace: Marketplace):
    sim, now = marketplace.sim, time.time()
    shipped = [
        sim.add_order(created_at=now - 7200 + i, status="Shipped", updated_at=now - 600) for i in range(3)
    ]
    unshipped = [
        sim.add_order(created_at=now - 3600 + i, status="Unshipped", updated_at=now - 600) for i in range(5)
    ]
    marketplace.sync_orders()

    status, _, body = marketplace.http(
        load_event("marketplace-api/orders.json")
    )  # status=Unshipped, limit 20
    assert status == 200
    assert {o["amazon_order_id"] for o in body["orders"]} == set(unshipped)

    seen, cursor = [], None
    while True:
        query = "status=Unshipped,Shipped&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, _, page = marketplace.get("/marketplace/orders", query)
        assert status == 200
        seen += [o["amazon_order_id"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(shipped + unshipped)) or sorted(seen) == sorted(shipped + unshipped)
    assert len(seen) == len(set(seen)) == 8
    purchase_dates = [
        o["purchase_date"] for o in marketplace.get("/marketplace/orders", "limit=50")[2]["orders"]
    ]
    assert purchase_dates == sorted(purchase_dates, reverse=True)

    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5400))
    _, _, early = marketplace.get("/marketplace/orders", f"purchased_before={cut}")
    assert {o["amazon_order_id"] for o in early["orders"]} == set(shipped)
    _, _, late = marketplace.get("/marketplace/orders", f"purchased_after={cut}&status=shipped")
    assert late["orders"] == []


def test_orders_refuse_bad_filters_with_4xx(marketplace: Marketplace):
    status, headers, body = marketplace.get("/marketplace/orders", "status=Lost")
    assert (status, headers["content-type"]) == (422, "application/problem+json")
    assert "unknown order status Lost" in body["detail"]
    assert marketplace.get("/marketplace/orders", "cursor=not-ours")[0] == 422
    tampered = base64.urlsafe_b64encode(b'["orders", "yesterday", 3]').decode()
    assert marketplace.get("/marketplace/orders", f"cursor={tampered}")[0] == 422
    inventory_cursor = base64.urlsafe_b64encode(b'["inventory", "SKU-1"]').decode()
    assert marketplace.get("/marketplace/orders", f"cursor={inventory_cursor}")[0] == 422
    assert marketplace.get("/marketplace/orders", "limit=0")[0] == 422
    assert marketplace.get("/marketplace/orders", "purchased_after=yesterday")[0] == 422


def test_order_with_items(marketplace: Marketplace):
    [order_id] = marketplace.orders(1)
    marketplace.sync_orders()
    status, _, body = get_order(marketplace, order_id)
    assert status == 200
    order = body["order"]
    assert order["amazon_order_id"] == order_id
    assert order["order_status"] == "Unshipped"
    assert order["api_version"] == "v0"
    assert order["amazon_payload"]["AmazonOrderId"] == order_id
    [item] = order["items"]
    assert item["item_price"]["amount"] == order["order_total"]["amount"]
    assert item["quantity_ordered"] >= 1


def test_unknown_or_malformed_order_id(marketplace: Marketplace):
    status, _, body = marketplace.http(load_event("marketplace-api/order.json"))
    assert status == 404
    assert body["type"] == "https://opsdeck.dev/problems/not-found"
    assert get_order(marketplace, "'; DROP TABLE x")[0] == 422


# -------------------------------------------------------------------------- sync


def test_sync_needs_a_token_with_the_operator_role(marketplace: Marketplace):
    status, headers, body = marketplace.post_sync(claims=None)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    status, _, body = marketplace.http(load_event("marketplace-api/sync-without-operator-role.json"))
    assert status == 403
    assert body["detail"] == "missing role: marketplace-operator"
    assert marketplace.sim.requests() == []


def test_sync_runs_now_and_reports_counts(marketplace: Marketplace):
    marketplace.orders(3)
    status, _, body = marketplace.http(load_event("marketplace-api/sync.json"))
    assert status == 200
    assert body["status"] == "succeeded"
    assert (body["fetched"], body["upserted"], body["new"], body["notified"]) == (3, 3, 3, 3)
    assert isinstance(body["run_id"], int)
    _, _, logs = marketplace.get("/marketplace/logs", f"run_id={body['run_id']}")
    assert logs["logs"][0]["trigger"] == "api"


def test_sync_without_credentials_is_503_naming_them(marketplace: Marketplace, configure):
    with configure(SPAPI_CLIENT_SECRET=None, SPAPI_REFRESH_TOKEN=None):
        status, headers, body = marketplace.post_sync()
    assert (status, headers["content-type"]) == (503, "application/problem+json")
    assert body["detail"].startswith(
        "Missing SP-API credentials: set SPAPI_CLIENT_SECRET, SPAPI_REFRESH_TOKEN"
    )
    assert body["type"] == "https://opsdeck.dev/problems/not-configured"
    _, _, logs = marketplace.get("/marketplace/logs")
    assert logs["logs"][0]["status"] == "failed" and logs["logs"][0]["id"] == body["run_id"]


def test_sync_with_upstream_failure_is_502(marketplace: Marketplace):
    marketplace.orders(1)
    marketplace.sim.inject(
        "getOrders", status=503, body={"errors": [{"code": "ServiceUnavailable"}]}, times=5
    )
    status, _, body = marketplace.post_sync()
    assert status == 502, body
    assert body["detail"] == "SP-API getOrders answered HTTP 503: ServiceUnavailable"
    assert body["upstream_status"] == 503 and isinstance(body["run_id"], int)


def test_sync_outliving_the_request_answers_202(marketplace: Marketplace, configure):
    marketplace.orders(2)
    marketplace.sim.override_quota("getOrders", 0.0167, 0)  # throttled: the next token is a minute away
    with configure(SYNC_API_DEADLINE_S="2"):
        status, headers, body = marketplace.post_sync()
    assert status == 202
    assert body["status"] == "deferred" and body["continues"] == "next scheduled run"
    assert headers["location"] == f"/marketplace/logs?run_id={body['run_id']}"

    # A minute later the quota is back (for the simulator and for the shared buckets in Redis) and
    # the schedule finishes the work, in windows half as long as the one that did not fit.
    marketplace.sim.override_quota("getOrders", 0.0167, 20)
    redis = cache.client()
    for key in redis.scan_iter("marketplace:spapi:*"):
        redis.delete(key)
    first, second = marketplace.sync_orders(), marketplace.sync_orders()
    spans = [
        (r.window_end - r.window_start).total_seconds()
        for r in marketplace.rows(
            "SELECT window_start, window_end FROM marketplace.sync_runs "
            "WHERE trigger = 'schedule' ORDER BY id"
        )
    ]
    assert spans[0] == 43_200
    assert (first["status"], second["status"], first["new"] + second["new"]) == ("succeeded", "succeeded", 2)


def test_sync_while_another_run_holds_the_lock_answers_202_with_its_id(marketplace: Marketplace):
    lock = sync.RunLock("orders:ATVPDKIKX0DER", 30)
    assert lock.acquire()
    lock.attach(41)
    try:
        status, _, body = marketplace.post_sync()
    finally:
        lock.release()
    assert (status, body["status"], body["run_id"]) == (202, "running", 41)
    assert marketplace.sim.requests() == []


# ------------------------------------------------------------------ logs and docs


def test_logs_newest_first_with_cursor(marketplace: Marketplace):
    for _ in range(3):
        marketplace.sync_orders()
    marketplace.sync_inventory()
    _, _, everything = marketplace.get("/marketplace/logs")
    ids = [r["id"] for r in everything["logs"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
    assert everything["logs"][0]["kind"] == "inventory"

    status, _, first = marketplace.http(load_event("marketplace-api/logs.json"))  # kind=orders
    assert status == 200 and [r["kind"] for r in first["logs"]] == ["orders"] * 3
    _, _, page = marketplace.get("/marketplace/logs", "kind=orders&limit=2")
    _, _, rest = marketplace.get("/marketplace/logs", f"kind=orders&limit=2&cursor={page['next_cursor']}")
    assert [r["id"] for r in page["logs"] + rest["logs"]] == ids[1:]
    assert marketplace.get("/marketplace/logs", "run_id=999")[0] == 404
    assert marketplace.get("/marketplace/logs", "status=exploded")[0] == 422


def test_docs_and_openapi(marketplace: Marketplace):
    status, headers, _ = marketplace.http(load_event("marketplace-api/docs.json"))
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, _, spec = marketplace.http(load_event("marketplace-api/openapi.json"))
    assert status == 200
    assert "/marketplace/orders/sync" in spec["paths"]
    assert set(spec["paths"]["/marketplace/orders/sync"]["post"]["responses"]) >= {"200", "202", "502", "503"}


def test_gateway_claims_from_a_verified_jwt_are_honoured(marketplace: Marketplace):
    event = http_event(
        "POST",
        "/marketplace/orders/sync",
        jwt_claims={**OPERATOR, "roles": ["viewer", "marketplace-operator"]},
    )
    assert marketplace.http(event)[0] == 200
