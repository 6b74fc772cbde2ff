"""The ops console's part of the demo and contract data (development tooling, never deployed).

There is no ``seed``: the console shows the other capabilities' demo data. For the contract test
(docs/http-api.md) the console's API needs its roles and one known invocation, the one its
document's examples name (``GET /ops/invocations/{request_id}``, re-invoke).
"""

from __future__ import annotations

from typing import Any

CONTRACT_ROLES = ("ops-admin",)


def contract(cloud: Any) -> None:
    """One invocation of ``ops-api`` under the example request id of the document."""
    from functions.ops.models import EXAMPLE_REQUEST_ID
    from localcloud.events import http_event

    event = http_event("GET", "/ops/functions", route_key="GET /ops/functions")
    cloud.invoke_raw("ops-api", event, request_id=EXAMPLE_REQUEST_ID)
