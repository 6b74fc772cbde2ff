"""``marketplace-inventory-sync``: FBA inventory summaries into ``marketplace.inventory`` (every 30 minutes).

Same contract as ``orders_sync``: EventBridge's scheduled event in, the run's result out;
expected failures are recorded and returned, unexpected ones raise.
"""

from __future__ import annotations

from typing import Any

from opsdeck.errors import OpsdeckError
from opsdeck.observability import entry, logger

from .orders_sync import sync, trigger_of
from .pacing import lambda_deadline


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        result = sync.run_inventory_sync(trigger=trigger_of(event), deadline=lambda_deadline(context))
    except OpsdeckError as exc:
        logger.error("inventory sync failed", extra={"problem": exc.slug, "detail": exc.detail})
        return {"status": "failed", "error": exc.detail, **exc.extra}
    return result.as_dict()
