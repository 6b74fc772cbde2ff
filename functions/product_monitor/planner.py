"""``product-monitor-planner`` / ``product-monitor-health``: plan an ingest run on a schedule.

The daily run (``cron(30 0 * * ? *)``, the seed's 00:30) fetches every tracked ASIN and the
competitors linked to them; the health sample (``rate(6 hours)``) a deterministic fraction of
them (``HEALTH_SAMPLE_FRACTION``, at least one batch). Both expressions live in the catalog
(the one place CDK and the local cloud read); the kind comes from the schedule's input
(``detail.kind``). The planner also creates the coming months' metric partitions and re-sends
jobs whose message was lost (still ``queued`` an hour after planning).
"""

from __future__ import annotations

import uuid
from typing import Any

from opsdeck.lazy import lazy_import
from opsdeck.observability import entry

ingest = lazy_import("functions.product_monitor.ingest")


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    kind = detail.get("kind") or event.get("kind") or "daily"
    if kind not in ("daily", "health"):
        kind = "daily"
    run_id = detail.get("run_id")  # an input may pin the run id (idempotent re-fires)
    return ingest.plan(kind, "schedule", run_id=uuid.UUID(run_id) if run_id else None)
