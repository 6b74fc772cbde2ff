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

from typing import Any

import httpx

PLATFORMS: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
    ("staywell", {}, {}),
    ("roomly", {}, {"latency_ms": 300}),
    ("bookit", {}, {"error_rate": 0.33, "error_status": 503}),
    ("slowstay", {"read_timeout_s": 1}, {"timeout_rate": 0.2, "timeout_s": 5}),
    ("closedinn", {"is_active": False}, {}),
)


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
