"""Scheduler control: durable state in PostgreSQL, EventBridge rules kept in agreement with it.

The state of each task type (``running`` / ``paused`` / ``stopped``) and its ``enabled`` flag
live in ``platform_sync.task_types``; that row is the truth. The EventBridge rule of the task
type (``rate(1 minute)``, one per task type) is a cost optimisation derived from it: enabled
exactly when the task type is running and enabled (``domain.rule_should_be_enabled``).

Keeping the two in agreement:

* a control call locks the row (``FOR UPDATE``), applies the transition, and enables/disables
  the rule *before* committing; if EventBridge refuses, the transaction rolls back and the
  caller gets a 503, so the stored state never claims what the rule does not do. Two
  concurrent calls serialise on the row lock (the second one sees the first's result);
* a redeploy (CloudFormation puts every rule back to the catalog's ``ENABLED``), a manual
  change in the console or a lost race re-enables a rule of a paused task type: its next
  tick runs the dispatcher, which reads the stored state, dispatches nothing and disables
  the rule again (one invocation, no jobs). ``GET /scheduler`` shows both states and
  ``in_agreement``;
* the opposite drift (a running task type whose rule is disabled) is repaired by any
  control call, and by ``GET /scheduler?reconcile=true`` (operator role).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from opsdeck.errors import Conflict, Unavailable
from opsdeck.naming import schedule_rule_env
from opsdeck.observability import logger

from . import repository
from .domain import TASK_TYPES, Action, TransitionRefused, rule_should_be_enabled, transition

SCHEDULES = {"sync": "platform-sync-sync-schedule", "valid": "platform-sync-valid-schedule"}


def rule_name(task_type: str) -> str | None:
    """The EventBridge rule of ``task_type`` (``<SCHEDULE>_RULE_NAME``), or None where not wired."""
    return os.environ.get(schedule_rule_env(SCHEDULES[task_type])) or None


def rule_state(task_type: str) -> str | None:
    """``ENABLED`` / ``DISABLED`` as EventBridge reports it; None when unknown."""
    name = rule_name(task_type)
    if name is None:
        return None
    from opsdeck import aws

    try:
        return aws.client("events").describe_rule(Name=name).get("State")
    except Exception as exc:
        logger.warning("rule state unavailable", extra={"rule": name, "error": type(exc).__name__})
        return None


def apply_rule(task_type: str, enabled: bool) -> bool:
    """Enable/disable the task type's rule; False when no rule is wired (tests, a shell)."""
    name = rule_name(task_type)
    if name is None:
        return False
    from opsdeck import aws

    events = aws.client("events")
    try:
        if enabled:
            events.enable_rule(Name=name)
        else:
            events.disable_rule(Name=name)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise Unavailable(f"EventBridge refused to change rule {name}: {code}") from None
    logger.info("rule changed", extra={"rule": name, "enabled": enabled, "task_type": task_type})
    _follow_with_alarm(name, enabled)
    return True


def _follow_with_alarm(rule: str, enabled: bool) -> None:
    """The rule's stalled alarm (``<rule>-stalled``, infra_cdk/monitoring.py) notifies only while
    the rule is meant to fire: a paused task type is not a stalled dispatcher. Best effort: an
    alarm that cannot be changed only means a notification too many."""
    if os.environ.get("PLATFORM_SYNC_STALLED_ALARMS", "true").lower() in ("0", "false", "no"):
        return
    from opsdeck import aws

    try:
        cloudwatch = aws.client("cloudwatch")
        names = [f"{rule}-stalled"]
        if enabled:
            cloudwatch.enable_alarm_actions(AlarmNames=names)
        else:
            cloudwatch.disable_alarm_actions(AlarmNames=names)
    except Exception as exc:
        logger.info("stalled alarm not changed", extra={"rule": rule, "error": type(exc).__name__})


@dataclass(frozen=True)
class ControlResult:
    task_type: str
    previous: str
    state: str
    changed: bool
    canceled_jobs: int


def control(action: Action, task_types: tuple[str, ...] = TASK_TYPES, *, by: str) -> list[ControlResult]:
    """Apply ``action`` to ``task_types`` atomically (all or none); ``Conflict`` when refused."""
    from opsdeck import db

    results: list[ControlResult] = []
    with db.transaction() as conn:
        rows = repository.lock_task_types(conn, task_types)
        plans: list[tuple[Any, str | None]] = []
        for name in sorted(task_types):
            row = rows[name]
            try:
                plans.append((row, transition(row.state, action)))
            except TransitionRefused as exc:
                raise Conflict(f"{action} {name}: {exc}", task_type=name, state=row.state) from None
        for row, new_state in plans:
            state = new_state or row.state
            canceled = 0
            if new_state is not None:
                repository.set_state(conn, row.task_type, new_state, by)
            if action == "stop":
                canceled = repository.cancel_open_jobs(
                    conn, task_type=row.task_type, reason="scheduler stopped"
                )
            # always (re)applied: a control call also repairs a rule that drifted
            apply_rule(row.task_type, rule_should_be_enabled(state, row.enabled))
            results.append(ControlResult(row.task_type, row.state, state, new_state is not None, canceled))
    return results


def update_config(task_type: str, values: dict[str, Any]) -> Any:
    """Change a task type's configuration under its row lock; the rule follows ``enabled``."""
    from opsdeck import db

    with db.transaction() as conn:
        repository.lock_task_types(conn, [task_type])
        row = repository.update_task_type(conn, task_type, values)
        if "enabled" in values:
            apply_rule(task_type, rule_should_be_enabled(row.state, row.enabled))
    return row


def reconcile() -> dict[str, bool]:
    """Bring every rule in line with the stored state; task type → whether it was changed."""
    changed = {}
    for row in repository.task_types():
        wanted = "ENABLED" if rule_should_be_enabled(row.state, row.enabled) else "DISABLED"
        actual = rule_state(row.task_type)
        changed[row.task_type] = actual is not None and actual != wanted
        if changed[row.task_type]:
            apply_rule(row.task_type, wanted == "ENABLED")
    return changed
