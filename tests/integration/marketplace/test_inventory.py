"""FBA inventory: the scheduled sync into marketplace.inventory, served by GET /marketplace/inventory."""

from __future__ import annotations

import time

from tests.integration.marketplace.conftest import Marketplace
from tests.support import load_event


def test_inventory_sync_reads_every_page_and_serves_it(sim, db, redis_url, configure):
    from functions.marketplace import simulator
    from tests.integration.marketplace.conftest import _environment

    bigger = simulator.Simulator(seed=3, skus=60)  # 50 per page: two pages
    with simulator.serve(simulator.create_app(bigger)) as served, configure(**_environment(served.url)):
        marketplace = Marketplace(bigger, db)
        result = marketplace.sync_inventory()
        assert (result["status"], result["pages"], result["fetched"], result["upserted"]) == (
            "succeeded",
            2,
            60,
            60,
        )
        first, second = bigger.requests("getInventorySummaries")
        assert first["params"]["granularityType"] == "Marketplace" and first["params"]["details"] == "true"
        assert "startDateTime" not in first["params"]  # the first run takes everything
        assert second["params"]["nextToken"] and second["params"]["granularityId"] == "ATVPDKIKX0DER"

        status, _, body = marketplace.http(load_event("marketplace-api/inventory.json"))  # limit=50
        assert status == 200 and len(body["inventory"]) == 50 and body["next_cursor"]
        _, _, rest = marketplace.get("/marketplace/inventory", f"cursor={body['next_cursor']}")
        skus = [r["seller_sku"] for r in body["inventory"] + rest["inventory"]]
        assert skus == sorted(bigger.inventory)
        row = body["inventory"][0]
        stock = bigger.inventory[row["seller_sku"]]
        assert row["fulfillable_quantity"] == stock["fulfillable"]
        assert row["reserved_quantity"] == stock["reserved"]
        assert row["asin"] == stock["asin"]


def test_inventory_sync_is_incremental(marketplace: Marketplace):
    sim = marketplace.sim
    marketplace.sync_inventory()
    sku = sorted(sim.inventory)[3]
    sim.set_stock(sku, fulfillable=7, at=time.time())

    result = marketplace.sync_inventory()

    params = sim.requests("getInventorySummaries")[-1]["params"]
    assert "startDateTime" in params  # changes since the watermark (minus the overlap)
    assert result["fetched"] == 1
    _, _, body = marketplace.get("/marketplace/inventory", f"seller_sku={sku}")
    assert [r["fulfillable_quantity"] for r in body["inventory"]] == [7]
    assert marketplace.scalar("SELECT count(*) FROM marketplace.inventory") == len(sim.inventory)
