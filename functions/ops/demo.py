"""The ops console's part of the demo and contract data (development tooling, never deployed).

There is no ``seed``: the console shows the other capabilities' demo data. For the contract test
(docs/http-api.md) the console's API needs its roles, one known invocation, the one its
document's examples name (``GET /ops/invocations/{request_id}``, re-invoke), and one replay, the
one ``GET /ops/replays/{replay_id}``'s example names — run for real, as the page runs one.
"""

from __future__ import annotations

from typing import Any

CONTRACT_ROLES = ("ops-admin",)


def contract(cloud: Any) -> None:
    """One invocation of ``ops-api`` under the example request id of the document; one dry-run
    replay under the example replay id."""
    from functions.ops.models import EXAMPLE_REPLAY_ID, EXAMPLE_REQUEST_ID
    from localcloud.events import http_event
    from opsdeck.auth import issue_dev_token

    event = http_event("GET", "/ops/functions", route_key="GET /ops/functions")
    cloud.invoke_raw("ops-api", event, request_id=EXAMPLE_REQUEST_ID)
    token = issue_dev_token("contract-seed", list(CONTRACT_ROLES))
    status, _, body = cloud.request(
        "POST",
        "/ops/queues/backoffice-changes-dlq/replay",
        headers={"authorization": f"Bearer {token}", "x-opsdeck-console": "1"},
        body={"dry_run": True, "replay_id": EXAMPLE_REPLAY_ID},
    )
    if status != 200:
        raise RuntimeError(f"the contract's example replay failed: {status} {body!r}")
