"""The orders sync through its scheduled handler, against the SP-API simulator over real HTTP."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from tests.integration.marketplace.conftest import Marketplace


def test_pagination_reads_every_page_sending_the_token_alone(marketplace: Marketplace, configure):
    ids = marketplace.orders(25)
    with configure(SPAPI_PAGE_SIZE="10"):
        result = marketplace.sync_orders()

    assert result["status"] == "succeeded"
    assert (result["pages"], result["fetched"], result["new"]) == (3, 25, 25)
    stored = {r.amazon_order_id for r in marketplace.rows("SELECT amazon_order_id FROM marketplace.orders")}
    assert stored == set(ids)
    first, *following = marketplace.sim.requests("getOrders")
    assert {"LastUpdatedAfter", "LastUpdatedBefore", "MaxResultsPerPage"} <= first["params"].keys()
    assert len(following) == 2
    for request in following:  # the opaque token (with + / =) arrived intact, alone with MarketplaceIds
        assert set(request["params"]) == {"MarketplaceIds", "NextToken"}
        assert request["status"] == 200
    assert marketplace.scalar("SELECT count(*) FROM marketplace.order_items") == 25


def test_window_ends_two_minutes_before_now_and_watermark_advances(marketplace: Marketplace):
    marketplace.orders(3)
    before = datetime.now(UTC)
    result = marketplace.sync_orders()

    params = marketplace.sim.requests("getOrders")[0]["params"]
    window_end = datetime.fromisoformat(params["LastUpdatedBefore"].replace("Z", "+00:00"))
    assert window_end <= before - timedelta(minutes=2)
    stored = marketplace.scalar(
        "SELECT watermark FROM marketplace.sync_state WHERE stream = 'orders:ATVPDKIKX0DER'"
    )
    assert stored == window_end
    assert result["watermark"] == window_end.isoformat()


def test_watermark_overlap_rereads_without_duplicates(marketplace: Marketplace):
    sim = marketplace.sim
    now = time.time()
    a1, a2, a3 = (
        sim.add_order(created_at=now - 600, status="Unshipped", updated_at=now - 240) for _ in range(3)
    )
    first = marketplace.sync_orders()
    assert (first["fetched"], first["new"]) == (3, 3)

    # Between runs: a1 ships (an update just before the watermark), and an order whose update is stamped
    # before the watermark shows up only now (Amazon is eventually consistent) — the overlap catches both.
    sim.set_status(a1, "Shipped", at=now - 170)
    late = sim.add_order(created_at=now - 900, status="Unshipped", updated_at=now - 200)
    second = marketplace.sync_orders()

    assert second["status"] == "succeeded"
    assert second["fetched"] == 4  # a1..a3 again (overlap) and the late one
    assert second["upserted"] == 2  # a1 (newer version) and the late one; a2/a3 unchanged are skipped
    assert second["new"] == 1
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 4
    assert (
        marketplace.scalar("SELECT order_status FROM marketplace.orders WHERE amazon_order_id = :i", i=a1)
        == "Shipped"
    )
    notified = [
        r.amazon_order_id for r in marketplace.rows("SELECT amazon_order_id FROM marketplace.notifications")
    ]
    assert sorted(notified) == sorted([a1, a2, a3, late])
    item_calls = [r["params"]["orderId"] for r in sim.requests("getOrderItems")]
    assert item_calls.count(a1) == 2  # status changed: items again (prices, shipped quantities)
    assert item_calls.count(a2) == item_calls.count(a3) == 1


def test_new_orders_detected_exactly_once_across_retries(marketplace: Marketplace):
    ids = marketplace.orders(4)
    # SP-API fails (503 on every attempt) while the third order's items are read: the run fails.
    marketplace.sim.inject(
        "getOrderItems", status=503, body={"errors": [{"code": "ServiceUnavailable"}]}, times=5, after=2
    )
    failed = marketplace.sync_orders()
    assert failed["status"] == "failed"
    assert "503" in failed["error"]
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 0
    assert marketplace.scalar("SELECT count(*) FROM marketplace.notifications") == 0

    retried = marketplace.sync_orders()  # EventBridge/Lambda retry or the next tick: same event
    again = marketplace.sync_orders()

    assert (retried["status"], retried["new"]) == ("succeeded", 4)
    assert (again["status"], again["new"], again["notified"]) == ("succeeded", 0, 0)
    assert marketplace.scalar("SELECT count(*) FROM marketplace.notifications") == 4
    announced = [m["payload"] for m in marketplace.sim.slack_messages]
    assert len(announced) == 1 and announced[0]["text"] == "4 new Amazon orders"  # a digest (> 3 at once)
    assert all(i in str(announced[0]["blocks"]) for i in ids)


def test_concurrent_runs_never_fetch_twice(sim, committed_db, redis_url, configure):
    from sqlalchemy import text

    from tests.integration.marketplace.conftest import _environment

    marketplace = Marketplace(sim, None)
    marketplace.orders(12)
    results: list[dict] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        results.append(marketplace.sync_orders())

    with configure(**_environment(sim.url, SPAPI_PAGE_SIZE="5")):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    statuses = sorted(r["status"] for r in results)
    assert statuses == ["running", "succeeded"]
    winner = next(r for r in results if r["status"] == "succeeded")
    loser = next(r for r in results if r["status"] == "running")
    assert winner["new"] == 12
    assert loser.get("run_id") in (winner["run_id"], None)  # the holder's run id, once attached
    assert len(sim.requests("getOrders")) == 3  # one listing, never two
    with committed_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM marketplace.orders")).scalar() == 12
        assert conn.execute(text("SELECT count(*) FROM marketplace.sync_runs")).scalar() == 1


def test_orders_api_2026_embeds_items_without_item_calls(marketplace: Marketplace, configure):
    ids = marketplace.orders(6)
    with configure(SPAPI_ORDERS_API="2026-01-01", SPAPI_PAGE_SIZE="4"):
        result = marketplace.sync_orders()

    assert (result["status"], result["pages"], result["new"], result["items_fetched"]) == (
        "succeeded",
        2,
        6,
        6,
    )
    assert marketplace.sim.requests("getOrderItems") == []
    second = marketplace.sim.requests("searchOrders")[1]["params"]
    assert "paginationToken" in second and second["lastUpdatedAfter"]
    row = marketplace.rows(
        "SELECT o.order_total_amount, o.api_version, i.item_price_amount, i.quantity_ordered "
        "FROM marketplace.orders o JOIN marketplace.order_items i USING (amazon_order_id) "
        "WHERE o.amazon_order_id = :i",
        i=ids[0],
    )[0]
    assert row.api_version == "2026-01-01"
    assert row.order_total_amount == row.item_price_amount  # one item per order here
    assert row.quantity_ordered >= 1


def test_pending_orders_have_no_prices_until_paid(marketplace: Marketplace):
    sim = marketplace.sim
    now = time.time()
    order = sim.add_order(created_at=now - 900)  # Pending
    marketplace.sync_orders()
    stored = marketplace.rows(
        "SELECT o.order_total_amount, i.item_price_amount FROM marketplace.orders o "
        "JOIN marketplace.order_items i USING (amazon_order_id) WHERE amazon_order_id = :i",
        i=order,
    )
    assert stored and stored[0].order_total_amount is None and stored[0].item_price_amount is None

    sim.set_status(order, "Unshipped", at=now - 200)
    marketplace.sync_orders()
    paid = marketplace.rows(
        "SELECT o.order_status, o.order_total_amount, sum(i.item_price_amount) AS items_total "
        "FROM marketplace.orders o JOIN marketplace.order_items i USING (amazon_order_id) "
        "WHERE amazon_order_id = :i GROUP BY o.order_status, o.order_total_amount",
        i=order,
    )[0]
    assert paid.order_status == "Unshipped"
    assert paid.order_total_amount is not None and paid.items_total == paid.order_total_amount


def test_deadline_while_fetching_items_commits_what_is_complete(marketplace: Marketplace):
    """A run whose quota runs dry mid-way commits progress; the next one finishes without refetching."""
    sim = marketplace.sim
    sim.override_quota("getOrderItems", 0.5, 3)  # this seller's real plan: burst 3
    ids = marketplace.orders(5)
    partial = marketplace.sync_orders(timeout_s=4)  # deadline ≈ 3.2 s: two more tokens at 0.5/s do not fit

    assert partial["status"] == "partial"
    assert partial["new"] == 5  # every order is stored (and announced) once
    assert 3 <= partial["items_fetched"] < 5
    assert marketplace.scalar("SELECT watermark FROM marketplace.sync_state") is None

    sim.override_quota("getOrderItems", 100, 30)
    finished = marketplace.sync_orders()
    assert (finished["status"], finished["new"], finished["upserted"]) == ("succeeded", 0, 0)
    answered = [r["params"]["orderId"] for r in sim.requests("getOrderItems") if r["status"] == 200]
    assert sorted(answered) == sorted(ids)  # each order's items read once, across both runs
    assert marketplace.scalar("SELECT count(DISTINCT amazon_order_id) FROM marketplace.order_items") == 5
