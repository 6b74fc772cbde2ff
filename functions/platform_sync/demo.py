"""Demo data for ``opsdeck local up --demo`` (contract B): platforms against the simulator.

Five platforms are registered through the API (so they pass the same checks a user's do),
each a key of the simulator mounted at ``/_sim/platform_sync`` with its own behaviour, so the
jobs that now run every minute show every outcome in ``GET /platform-sync/api/v1/jobs``:

* ``staywell`` — healthy; ``roomly`` — 300 ms latency;
* ``bookit`` — a third of the calls answer 503 (retried, mostly recovered);
* ``slowstay`` — a fifth of the calls outlast its 1 s read timeout (``timed_out``, retried);
* ``closedinn`` — inactive: registered, never called.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

PLATFORMS: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
    ("staywell", {}, {}),
    ("roomly", {}, {"latency_ms": 300}),
    ("bookit", {}, {"error_rate": 0.33, "error_status": 503}),
    ("slowstay", {"read_timeout_s": 1}, {"timeout_rate": 0.2, "timeout_s": 5}),
    ("closedinn", {"is_active": False}, {}),
)


CONTRACT_ROLES = ("platform-operator", "platform-viewer")
#: the OpenAPI document's examples name these: platform 1 (read, replaced), platform 2 (deleted),
#: job sync-1-20261203T0900Z
CONTRACT_MINUTE = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def contract(cloud: Any) -> None:
    """Contract data (docs/http-api.md): three platforms through the API, one dispatcher tick at
    a fixed minute through the dispatcher's entry point."""
    from sqlalchemy import text

    from localcloud.events import schedule_event
    from opsdeck import db
    from opsdeck.auth import issue_dev_token

    with db.transaction() as conn:  # ids 1..3 for the examples, whatever earlier tests used
        conn.execute(
            text(
                "TRUNCATE platform_sync.job_attempts, platform_sync.jobs, platform_sync.platforms "
                "RESTART IDENTITY CASCADE"
            )
        )
    base = cloud.simulator_urls["platform_sync"]
    headers = {"authorization": "Bearer " + issue_dev_token("contract", ["platform-operator"])}
    for key in ("contract-a", "contract-b", "contract-c"):
        body = {"name": key, "base_url": f"{base}/p/{key}"}
        status, _, raw = cloud.request("POST", "/platform-sync/api/v1/platforms", headers=headers, body=body)
        if status != 201:
            raise RuntimeError(f"contract seed: {status} {raw[:300]!r}")
    event = schedule_event(
        cloud.rule_name("platform-sync-sync-schedule"), when=CONTRACT_MINUTE, detail={"task_type": "sync"}
    )
    cloud.invoke("platform-sync-dispatch-sync", event)


def seed(cloud: Any) -> None:
    from opsdeck.auth import issue_dev_token

    base = cloud.simulator_urls.get("platform_sync")
    if not base:
        print("platform_sync demo: the platform simulator is not mounted; nothing seeded")
        return
    token = issue_dev_token("demo", ["platform-operator"])
    headers = {"authorization": f"Bearer {token}"}
    registered = []
    for key, settings, behaviour in PLATFORMS:
        httpx.post(f"{base}/_control/behaviour", json={"key": key, **behaviour}, timeout=10)
        body = {"name": key, "base_url": f"{base}/p/{key}", "description": f"demo platform {key}", **settings}
        status, _, raw = cloud.request("POST", "/platform-sync/api/v1/platforms", headers=headers, body=body)
        if status == 201:
            registered.append(key)
        elif status != 409:  # already there from an earlier run
            print(f"platform_sync demo: {key} not registered: {status} {raw[:200]!r}")
    print(
        f"platform_sync demo: platforms {', '.join(registered) or '(already registered)'} on the simulator "
        f"({base}); jobs run every minute: GET /platform-sync/api/v1/jobs, "
        "GET /platform-sync/api/v1/scheduler "
        "with `opsdeck token --role platform-viewer`; calls seen by the platforms: "
        f"{base}/_control/calls"
    )


__all__ = ["PLATFORMS", "seed"]
