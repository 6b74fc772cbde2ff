"""``platform-sync-dispatch-sync`` / ``platform-sync-dispatch-valid``: one EventBridge rule per
task type, ``rate(1 minute)``; each tick enqueues that minute's jobs.

Event: EventBridge's scheduled event with ``detail.task_type`` (the catalog's
``Schedule.input``). The scheduled minute is the event's ``time`` with seconds dropped, so
the job ids of a tick — ``<task type>-<platform id>-<YYYYMMDDTHHMMZ>`` — are the same however
late or often the tick is delivered: a repeated tick (EventBridge's at-least-once delivery,
its retry of a failed invocation, a manual ``opsdeck local fire``) inserts nothing twice, and
a missed minute is never backfilled (EventBridge does not replay it, nor does this).

Under the task type's row lock (control calls take it too, so a tick and a stop cannot
interleave): a task type that is not running — or not enabled — dispatches nothing and
disables its rule again (a redeploy re-enabled it); one whose interval has not come round
(minute since epoch not divisible by ``interval_minutes``) dispatches nothing; otherwise one
job per active platform, set-based, then ``SendMessageBatch``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsdeck.lazy import lazy_import
from opsdeck.observability import entry, logger

from .domain import TASK_TYPES, is_due, minute_of, rule_should_be_enabled

run = lazy_import("functions.platform_sync.dispatch_run")


def scheduled_time(event: Any) -> datetime:
    text = event.get("time") if isinstance(event, dict) else None
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def task_type_of(event: Any) -> str:
    detail = event.get("detail") if isinstance(event, dict) else None
    task_type = detail.get("task_type") if isinstance(detail, dict) else None
    if task_type not in TASK_TYPES:
        raise ValueError(f"scheduled event without a known detail.task_type: {task_type!r}")
    return task_type


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task_type = task_type_of(event)
    minute = minute_of(scheduled_time(event))
    result = run.tick(task_type, minute)
    logger.info("tick", extra=result)
    return result


__all__ = ["handler", "is_due", "rule_should_be_enabled"]
