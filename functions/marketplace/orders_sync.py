"""``marketplace-orders-sync``: the scheduled orders sync (EventBridge, every 15 minutes).

Event: EventBridge's scheduled event, or ``{"trigger": "api-continuation"}`` when
``POST /marketplace/orders/sync`` hands unfinished work over (asynchronous invoke).
Returns the run's result. A run that fails for an expected reason (upstream down, bad
upstream JSON, missing credentials) is recorded in ``/marketplace/logs`` and returned,
not raised: the next tick retries it, while Lambda's automatic retries of an async
invocation would only spend SP-API quota. Anything unexpected raises.
"""

from __future__ import annotations

from typing import Any

from opsdeck.errors import OpsdeckError
from opsdeck.lazy import lazy_import
from opsdeck.observability import entry, logger

from .pacing import lambda_deadline

sync = lazy_import("functions.marketplace.sync")  # SP-API client, repository, Redis: loaded by the first run


def trigger_of(event: Any) -> str:
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if isinstance(event, dict) and isinstance(event.get("trigger"), str):
        return event["trigger"][:40]
    return "invoke"


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        result = sync.run_orders_sync(trigger=trigger_of(event), deadline=lambda_deadline(context))
    except OpsdeckError as exc:
        logger.error("orders sync failed", extra={"problem": exc.slug, "detail": exc.detail})
        return {"status": "failed", "error": exc.detail, **exc.extra}
    return result.as_dict()
