"""``backoffice-audit-retention``: purges admin audit rows older than the retention, daily.

Scheduled (``cron(20 3 * * ? *)``, 03:20 UTC) by the catalog. Rows of ``bo.admin_audit``
whose ``at`` is older than ``AUDIT_RETENTION_DAYS`` (default 400 — a little over 13 months, so
a yearly review still finds the whole previous year) are deleted in bounded batches of
``AUDIT_PURGE_BATCH`` rows (default 5,000), oldest first, **one transaction per batch**: locks
are short, the consumer and the admin API never wait long, and an interrupted run loses
nothing (the next run continues). Batches stop early when the invocation has less than
``STOP_WITH_MS`` left; the answer says whether the backlog is done::

    {"deleted": 12000, "batches": 3, "cutoff": "2025-10-29T03:20:00Z", "retention_days": 400,
     "complete": true}

The cut-off is fixed once per run (rows written meanwhile are never candidates). The
schedule's ``detail`` may carry ``{"retention_days": N}`` for a one-off run (never below
``MIN_RETENTION_DAYS``). Metric ``AuditRowsPurged``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from opsdeck.errors import ConfigError, InvalidInput
from opsdeck.observability import entry, logger, metric

DEFAULT_RETENTION_DAYS = 400
MIN_RETENTION_DAYS = 30
DEFAULT_BATCH = 5_000
MAX_BATCH = 50_000
#: stop starting batches when the invocation has less time than this left
STOP_WITH_MS = 10_000

# oldest first through the admin_audit_at index; SKIP LOCKED: two runs never fight over rows
PURGE = """
WITH doomed AS (
    SELECT id FROM bo.admin_audit WHERE at < :cutoff ORDER BY at LIMIT :batch FOR UPDATE SKIP LOCKED
)
DELETE FROM bo.admin_audit a USING doomed WHERE a.id = doomed.id
"""


def _int_setting(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        raise ConfigError(f"environment variable {name} is invalid: not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"environment variable {name} is invalid: must be within {low}..{high}")
    return value


def purge(
    *, retention_days: int, batch: int, now: datetime | None = None, remaining_ms: Any = None
) -> dict[str, Any]:
    """Delete audit rows older than ``retention_days`` in batches; returns the summary."""
    from sqlalchemy import text

    from opsdeck import db

    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    deleted = batches = 0
    complete = False
    while True:
        if remaining_ms is not None and batches and remaining_ms() < STOP_WITH_MS:
            break
        with db.transaction() as conn:
            n = conn.execute(text(PURGE), {"cutoff": cutoff, "batch": batch}).rowcount
        batches += 1
        deleted += n
        if n < batch:
            complete = True
            break
    return {
        "deleted": deleted,
        "batches": batches,
        "cutoff": cutoff.isoformat().replace("+00:00", "Z"),
        "retention_days": retention_days,
        "complete": complete,
    }


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    retention = _int_setting("AUDIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, MIN_RETENTION_DAYS, 36_500)
    detail = event.get("detail") if isinstance(event, dict) else None
    if isinstance(detail, dict) and "retention_days" in detail:
        asked = detail["retention_days"]
        if not isinstance(asked, int) or isinstance(asked, bool) or not MIN_RETENTION_DAYS <= asked <= 36_500:
            raise InvalidInput(f"detail.retention_days must be an integer within {MIN_RETENTION_DAYS}..36500")
        retention = asked
    batch = _int_setting("AUDIT_PURGE_BATCH", DEFAULT_BATCH, 1, MAX_BATCH)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    summary = purge(retention_days=retention, batch=batch, remaining_ms=remaining)
    metric("AuditRowsPurged", summary["deleted"])
    logger.info("audit log purged", extra=summary)
    return summary
