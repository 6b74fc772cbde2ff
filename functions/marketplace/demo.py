"""Demo data for ``opsdeck local up --demo`` (contract B).

The simulator the local cloud mounts (``simulator.create_app()``) is already a small shop:
40 orders over the last three days, each moving Pending → Unshipped → Shipped (a few
Canceled) as real time passes, a new order every ~2 minutes, 25 FBA SKUs. ``seed`` adds a
burst of orders placed just now — more than the digest threshold, so the first sync posts
one Slack digest — and says where to look. The local cloud then fires every schedule once
(the orders and inventory syncs), so the dashboard has data at once.
"""

from __future__ import annotations

from typing import Any

import httpx

BURST = 6
#: every role the API checks (the contract test's token carries them; docs/http-api.md)
CONTRACT_ROLES = ("marketplace-operator",)


def contract(cloud: Any) -> None:
    """Contract data: the order the OpenAPI document's example names (``api.EXAMPLE_ORDER_ID``),
    placed in the SP-API simulator and pulled by the real orders and inventory syncs."""
    from .api import EXAMPLE_ORDER_ID

    base = cloud.simulator_urls.get("marketplace")
    if not base:
        return
    placed = httpx.post(f"{base}/_control/orders", json={"order_ids": [EXAMPLE_ORDER_ID]}, timeout=10)
    placed.raise_for_status()
    cloud.fire("marketplace-orders-schedule")
    cloud.fire("marketplace-inventory-schedule")


def seed(cloud: Any) -> None:
    base = cloud.simulator_urls.get("marketplace")
    if not base:
        print("marketplace demo: the simulator is not mounted (real SP-API configured?); nothing seeded")
        return
    created = httpx.post(f"{base}/_control/orders", json={"count": BURST}, timeout=10).json()["created"]
    print(
        f"marketplace demo: {len(created)} new Amazon orders in the SP-API simulator ({base}); "
        "after the sync: GET /marketplace/orders, GET /marketplace/logs, Slack messages at "
        f"{base}/_control/slack/messages; POST /marketplace/orders/sync with "
        "`opsdeck token --role marketplace-operator`"
    )
