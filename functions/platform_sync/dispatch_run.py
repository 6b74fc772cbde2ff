"""The dispatcher's tick (database and SQS), loaded on the first tick of a container."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsdeck import db
from opsdeck.observability import logger

from . import control, jobs, metrics, repository
from .domain import is_due, rule_should_be_enabled


def tick(task_type: str, minute: datetime) -> dict[str, Any]:
    result: dict[str, Any] = {"task_type": task_type, "minute": minute.isoformat(), "dispatched": 0}
    disable = False
    with db.transaction() as conn:
        row = repository.lock_task_types(conn, [task_type])[task_type]
        result["state"] = row.state
        if not rule_should_be_enabled(row.state, row.enabled):
            result["skipped"] = row.state if row.enabled else "disabled"
            disable = True
        elif not is_due(minute, row.interval_minutes):
            result["skipped"] = f"not due (every {row.interval_minutes} minutes)"
        else:
            rows = jobs.enqueue_scheduled(conn, task_type, minute)
            repository.mark_run(conn, task_type, minute, len(rows))
            result["dispatched"] = len(rows)
    if disable:
        # the rule fired although the stored state says it must not (a redeploy re-enabled it)
        try:
            result["rule_disabled"] = control.apply_rule(task_type, False)
        except Exception as exc:
            logger.warning("could not disable the rule again", extra={"error": str(exc)})
    else:
        metrics.count("DispatcherTicks", task_type)
        metrics.count("JobsDispatched", task_type, result["dispatched"])
    return result
