"""Demo data for ``opsdeck local up --demo`` (contract B).

Tracks 120 simulated ASINs (two jobs), links four competitors to the first one, and leaves
the rest to the local cloud, which then fires every schedule once: the daily planner and the
health sample enqueue their jobs, the worker fetches them from the Apify simulator mounted at
``/_sim/product_monitor`` (429s, a few malformed items), promotes them, and the reports and
recommendations of the first ASIN are generated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

ASINS = [f"B0DEMO{i:04d}" for i in range(120)]
RIVALS = [f"B0RIVL{i:04d}" for i in range(4)]


def seed(cloud: Any) -> None:
    from opsdeck import db

    from . import repository

    if "product_monitor" not in cloud.simulator_urls:
        print(
            "product_monitor demo: the Apify simulator is not mounted (real Apify configured?); "
            "nothing seeded"
        )
        return
    now = datetime.now(UTC)
    with db.transaction() as conn:
        repository.track(conn, ASINS, "demo", now)
        for rival in RIVALS:
            repository.link(conn, ASINS[0], rival, "demo", now)
    print(
        f"product_monitor demo: {len(ASINS)} tracked ASINs and {len(RIVALS)} competitors of {ASINS[0]}; "
        f"after the runs: GET /product-monitor/v1/products/{ASINS[0]}, /competitions/{ASINS[0]}/report, "
        "/v1/metrics (`opsdeck token --role viewer` / `--role operator`)"
    )
