"""How the sync copes with LWA and SP-API as they really behave: token expiry and revocation,
throttling with x-amzn-RateLimit-Limit, the static sandbox's canned answers, broken JSON."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

from functions.marketplace import simulator
from tests.integration.marketplace.conftest import Marketplace

FIXTURES = Path(__file__).parent / "fixtures"


def statuses(sim: simulator.Simulator, operation: str) -> list[int]:
    return [r["status"] for r in sim.requests(operation)]


# ------------------------------------------------------------------------- tokens


def test_token_is_cached_then_refreshed_before_expiry(marketplace: Marketplace):
    marketplace.sim.token_ttl_s = 2  # the client refreshes ~10 % before expires_in
    marketplace.orders(2)
    marketplace.sync_orders()
    marketplace.sync_orders()
    assert marketplace.sim.lwa_calls == 1  # one token for both runs

    time.sleep(2.0)
    marketplace.sync_orders()
    assert marketplace.sim.lwa_calls == 2
    assert 401 not in statuses(marketplace.sim, "getOrders") and 403 not in statuses(
        marketplace.sim, "getOrders"
    )


def test_token_expired_upstream_is_refreshed_and_the_call_repeated(marketplace: Marketplace):
    marketplace.orders(2)
    marketplace.sync_orders()
    marketplace.sim.expire_tokens()  # the client still thinks its token is good for an hour
    marketplace.orders(1, ago_s=400, until_ago_s=300)

    result = marketplace.sync_orders()

    assert (result["status"], result["new"]) == ("succeeded", 1)
    assert marketplace.sim.lwa_calls == 2
    assert statuses(marketplace.sim, "getOrders")[-2:] == [403, 200]  # Amazon's 403 Unauthorized, then OK


def test_token_refused_with_401_is_refreshed_and_the_call_repeated(marketplace: Marketplace):
    marketplace.orders(1)
    marketplace.sync_orders()
    marketplace.sim.revoke_tokens()

    result = marketplace.sync_orders()

    assert result["status"] == "succeeded"
    assert marketplace.sim.lwa_calls == 2
    assert statuses(marketplace.sim, "getOrders")[-2:] == [401, 200]


def test_lwa_refusing_the_credentials_is_a_recorded_upstream_failure(marketplace: Marketplace, configure):
    with configure(SPAPI_REFRESH_TOKEN="Atzr|revoked-by-the-seller"):
        result = marketplace.sync_orders()
    assert result["status"] == "failed"
    assert result["error"] == "Amazon LWA answered HTTP 400: invalid_grant"
    logged = marketplace.rows("SELECT status, error FROM marketplace.sync_runs")
    assert [(r.status, r.error) for r in logged] == [("failed", result["error"])]


# --------------------------------------------------------------------- throttling


def test_throttling_backs_off_at_the_advertised_rate(marketplace: Marketplace):
    """The seller's real getOrderItems plan is 4 rps, burst 2 (not the published 0.5/30):
    after the first 429 the client adopts x-amzn-RateLimit-Limit and paces itself."""
    sim = marketplace.sim
    sim.override_quota("getOrderItems", 4.0, 2)
    marketplace.orders(8)

    result = marketplace.sync_orders()

    assert (result["status"], result["items_fetched"]) == ("succeeded", 8)
    calls = sim.requests("getOrderItems")
    throttled = [i for i, c in enumerate(calls) if c["status"] == 429]
    assert 1 <= len(throttled) <= 2, [c["status"] for c in calls]
    arrivals = sim.stat("getOrderItems").arrivals
    first = throttled[0]
    gaps = [b - a for a, b in zip(arrivals[first:], arrivals[first + 1 :], strict=False)]
    # after the 429: ~4 requests/s on average (the bucket may bank a token while a retry sleeps),
    # never the 30-request burst the published plan would allow
    assert sum(gaps) / len(gaps) >= 0.22, gaps


def test_throttled_listing_past_the_deadline_defers_and_halves_the_window(marketplace: Marketplace):
    """getOrders answers 429 at 0.0167 rps: the next token is a minute away, past this run's deadline.
    The run stops without writing and the next one reads a window half as long."""
    marketplace.orders(2)
    marketplace.sim.override_quota("getOrders", 0.0167, 0)  # this seller's quota is spent
    started = time.monotonic()
    result = marketplace.sync_orders(timeout_s=10)

    assert time.monotonic() - started < 8  # no minute-long sleep inside a 10 s Lambda
    assert result["status"] == "deferred"
    assert "getOrders quota frees a token in" in result["error"]
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 0
    assert marketplace.scalar("SELECT window_s FROM marketplace.sync_state") == 86_400 // 2
    assert marketplace.scalar("SELECT status FROM marketplace.sync_runs") == "deferred"


# ------------------------------------------------------------------------ sandbox


def test_static_sandbox_canned_response_is_parsed(sim, db, redis_url, configure):
    """``SPAPI_ENVIRONMENT=sandbox``: the sync asks for ``CreatedAfter=TEST_CASE_200`` and parses the
    canned answer recorded from Amazon (1970 dates, numeric-string CreatedBefore, string money)."""
    from tests.integration.marketplace.conftest import _environment

    recorded = json.loads((FIXTURES / "sandbox_orders_v0.json").read_text())
    sim.static_sandbox = True
    sim.load_sandbox_cases("getOrders", recorded["getOrders"]["200"])
    sim.load_sandbox_cases("getOrders", recorded["getOrders"]["400"], status=400)
    sim.load_sandbox_cases("getOrderItems", recorded["getOrderItems"]["200"])
    marketplace = Marketplace(sim, db)

    with configure(**_environment(sim.url, SPAPI_ENVIRONMENT="sandbox")):
        result = marketplace.sync_orders()
        status, _, body = marketplace.get(
            "/marketplace/orders/902-1845936-5435065",
            route_key="GET /marketplace/orders/{amazon_order_id}",
            path_parameters={"amazon_order_id": "902-1845936-5435065"},
        )

    assert result["status"] == "succeeded", result
    assert (result["fetched"], result["new"], result["items_fetched"]) == (2, 2, 1)
    assert [r["params"] for r in sim.requests("getOrders")] == [
        {"MarketplaceIds": "ATVPDKIKX0DER", "CreatedAfter": "TEST_CASE_200"}
    ]
    assert [r["params"]["orderId"] for r in sim.requests("getOrderItems")] == ["TEST_CASE_200"]
    rows = marketplace.rows(
        "SELECT amazon_order_id, order_status, purchase_date, last_update_date, order_total_amount, "
        "order_total_currency FROM marketplace.orders ORDER BY amazon_order_id"
    )
    assert [r.amazon_order_id for r in rows] == ["902-1845936-5435065", "902-8745147-1934268"]
    first = rows[0]
    assert first.order_status == "Unshipped"
    assert first.purchase_date.isoformat() == "1970-01-19T03:58:30+00:00"
    assert first.last_update_date.isoformat() == "1970-01-19T03:58:32+00:00"
    assert (first.order_total_amount, first.order_total_currency) == (Decimal("11.01"), "USD")
    assert marketplace.scalar("SELECT watermark FROM marketplace.sync_state") is None  # 1970 is no watermark
    assert status == 200
    order = body["order"]
    assert order["order_total"] == {"amount": "11.01", "currency_code": "USD"}
    assert [
        (i["seller_sku"], i["item_price"]["amount"], i["item_tax"]["amount"]) for i in order["items"]
    ] == [("NABetaASINB00551Q3CS", "10.00", "1.01")]


def test_static_sandbox_error_case_is_an_upstream_failure(sim, db, redis_url, configure):
    from tests.integration.marketplace.conftest import _environment

    recorded = json.loads((FIXTURES / "sandbox_orders_v0.json").read_text())
    sim.static_sandbox = True
    sim.load_sandbox_cases("getOrders", recorded["getOrders"]["400"], status=400)
    with configure(
        **_environment(sim.url, SPAPI_ENVIRONMENT="sandbox", SPAPI_SANDBOX_TEST_CASE="TEST_CASE_400")
    ):
        result = Marketplace(sim, db).sync_orders()
    assert result["status"] == "failed"
    assert result["error"] == "SP-API getOrders answered HTTP 400: InvalidInput: Invalid Input"


# ----------------------------------------------------------------------- bad JSON


def test_bad_upstream_json_fails_the_run_with_the_reason_and_writes_nothing(
    marketplace: Marketplace, configure
):
    ids = marketplace.orders(15)
    marketplace.sim.inject("getOrders", body=b'{"payload": {"Orders": [{"AmazonOrderId": "1', after=1)
    with configure(SPAPI_PAGE_SIZE="10"):
        failed = marketplace.sync_orders()
        status, _, logs = marketplace.get("/marketplace/logs")

        assert failed["status"] == "failed"
        assert failed["error"].startswith("SP-API getOrders answered invalid JSON (HTTP 200")
        assert status == 200
        assert [(r["status"], r["error"], r["pages"]) for r in logs["logs"]] == [
            ("failed", failed["error"], 0)
        ]
        for table in ("orders", "order_items", "notifications", "sync_state"):
            assert marketplace.scalar(f"SELECT count(*) FROM marketplace.{table}") == 0, table
        assert marketplace.sim.slack_messages == []

        recovered = marketplace.sync_orders()
    assert (recovered["status"], recovered["new"]) == ("succeeded", 15)
    assert {
        r.amazon_order_id for r in marketplace.rows("SELECT amazon_order_id FROM marketplace.orders")
    } == set(ids)


def test_json_that_breaks_the_contract_fails_the_run_too(marketplace: Marketplace):
    marketplace.orders(3)
    broken = {"payload": {"Orders": [{"PurchaseDate": "2026-11-22T08:00:00Z", "OrderStatus": "Unshipped"}]}}
    marketplace.sim.inject("getOrders", body=broken)
    result = marketplace.sync_orders()
    assert result["status"] == "failed"
    assert result["error"] == "payload.Orders[0] has no AmazonOrderId"
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 0


def test_bad_item_json_rolls_back_orders_already_listed(marketplace: Marketplace):
    marketplace.orders(3)
    marketplace.sim.inject("getOrderItems", body=b"<html>502 Bad Gateway</html>", after=2)
    result = marketplace.sync_orders()
    assert result["status"] == "failed"
    assert "getOrderItems answered invalid JSON" in result["error"]
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 0
    assert marketplace.scalar("SELECT count(*) FROM marketplace.order_items") == 0
