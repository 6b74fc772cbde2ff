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


#: every role the product_monitor API checks (the contract test's token carries them)
CONTRACT_ROLES = ("viewer", "operator", "admin")
#: what the OpenAPI examples name
EXAMPLE_ASIN, EXAMPLE_COMPETITOR = "B0CX23V2ZK", "B09B8V1LZ3"
EXAMPLE_RUN = "3c1e2a7b-7f4d-4e8a-b1c2-9d0e8f7a6b01"


def contract(cloud: Any) -> None:
    """Seed what the document's examples look up: tracked ASINs, links, one fetched run."""
    from localcloud.events import schedule_event
    from opsdeck import db

    from . import repository

    now = datetime.now(UTC)
    with db.transaction() as conn:
        repository.track(conn, [EXAMPLE_ASIN, EXAMPLE_COMPETITOR, "B0UNTRACK1"], "contract", now)
        repository.link(conn, EXAMPLE_ASIN, EXAMPLE_COMPETITOR, "contract", now)
        repository.link(conn, EXAMPLE_ASIN, "B0UNLINK01", "contract", now)
    event = schedule_event(
        cloud.rule_name("product-monitor-daily"), detail={"kind": "daily", "run_id": EXAMPLE_RUN}
    )
    cloud.invoke("product-monitor-planner", event)
    cloud.run_until_idle(max_seconds=600)
