"""Schedules: an EventBridge rule per catalog ``Schedule``, named ``<stack>-<schedule name>``.

The stable name lets code enable/disable the rule by name (``<SCHEDULE>_RULE_NAME``, granted by
``controls_schedules``). The target receives the scheduled event unchanged except for
``detail``, which carries the catalog's ``Schedule.input``: an input transformer copies
version, id, detail-type, source, account, time, region and resources from the event and
inserts the input as ``detail`` — the same shape ``localcloud.events.schedule_event`` builds,
so handlers see one event shape locally and on AWS. Failed deliveries are retried twice within
an hour (EventBridge → Lambda asynchronous invoke).

A schedule's expression is the catalog's unless the context key ``scheduleExpressions``
(``DeployConfig.schedule_expressions``) overrides it by schedule name; the rule's name stays.
A schedule's stalled alarm (``Schedule.stalled_after_minutes``) follows its override:
``stalled_alarm_minutes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.catalog import Function, Schedule, schedule_name

from .config import ConfigError
from .names import Names

#: Fields of EventBridge's scheduled event passed through as they are.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources")

#: The longest window a CloudWatch alarm evaluates: PutMetricAlarm allows period x evaluation
#: periods up to seven days (one day while the period is under an hour, which a one-period
#: window under an hour never reaches).
MAX_ALARM_MINUTES = 7 * 24 * 60


def catalog_schedules(functions: tuple[Function, ...]) -> list[tuple[str, Schedule, Function]]:
    return [(schedule_name(f), f.trigger, f) for f in functions if isinstance(f.trigger, Schedule)]


def schedule_expressions(functions: tuple[Function, ...], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every schedule's expression by name: the catalog's, or its ``scheduleExpressions`` override."""
    expressions = {name: schedule.expression for name, schedule, _ in catalog_schedules(functions)}
    unknown = sorted(set(overrides) - set(expressions))
    if unknown:
        raise ConfigError(
            f"context scheduleExpressions: unknown schedule name(s) {', '.join(unknown)}; "
            f"the catalog's schedules are {', '.join(sorted(expressions)) or '(none)'}"
        )
    return {**expressions, **overrides}


def stalled_alarm_minutes(functions: tuple[Function, ...], expressions: Mapping[str, str]) -> dict[str, int]:
    """Schedule name → how many minutes without an invocation raise its stalled alarm, for the
    expression the stack deploys (``expressions``: ``schedule_expressions(…)``).

    The catalog's ``stalled_after_minutes`` is meant for the catalog's expression (platform_sync:
    5 minutes for a run every minute, five missed runs). An override keeps that ratio to the
    longest wait between two runs, so a slower schedule is not "stalled" between its runs; the
    window never shrinks below the catalog's. ``ConfigError`` when the window would pass seven days,
    which a CloudWatch alarm cannot evaluate, or when the expression fires fewer than twice.
    """
    # the layer's parser, imported here for the reason infra_cdk.config._schedule_expressions gives
    from opsdeck.schedules import parse

    out: dict[str, int] = {}
    for name, schedule, _ in catalog_schedules(functions):
        minutes = schedule.stalled_after_minutes
        if not minutes:
            continue
        expression = expressions[name]
        if expression != schedule.expression:
            where = f"context scheduleExpressions[{name!r}]: {expression}"
            gap = parse(expression).longest_gap()
            if gap is None:
                raise ConfigError(f"{where} fires fewer than twice, so its stalled alarm would never clear")
            catalog_gap = parse(schedule.expression).longest_gap() or gap
            minutes = max(minutes, math.ceil(minutes * (gap / catalog_gap)))
            if minutes > MAX_ALARM_MINUTES:
                meant = f"{schedule.stalled_after_minutes} minutes for the catalog's {schedule.expression}"
                raise ConfigError(
                    f"{where} runs as much as {gap // timedelta(minutes=1)} minutes apart; its stalled"
                    f" alarm ({meant}) would need {minutes} minutes, more than the {MAX_ALARM_MINUTES}"
                    " (seven days) a CloudWatch alarm evaluates: choose an expression that runs more often"
                )
        out[name] = minutes
    return out


def scheduled_event_input(detail: dict[str, Any]) -> events.RuleTargetInput:
    """The scheduled event with ``detail`` replaced by ``detail`` (an input transformer)."""
    shape: dict[str, Any] = {name: events.EventField.from_path(f"$.{name}") for name in EVENT_FIELDS}
    shape["detail"] = detail
    return events.RuleTargetInput.from_object(shape)


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        names: Names,
        lambdas: dict[str, lambda_.IFunction],
        expressions: Mapping[str, str] | None = None,
    ) -> None:
        """``expressions``: ``schedule_expressions(functions, overrides)``; None = the catalog's."""
        super().__init__(scope, id)
        self.rules: dict[str, events.Rule] = {}
        expressions = expressions if expressions is not None else schedule_expressions(functions, {})
        for name, schedule, function in catalog_schedules(functions):
            expression = expressions[name]
            description = f"opsdeck: runs {function.name} ({expression})"
            if expression != schedule.expression:
                description += f"; context scheduleExpressions overrides the catalog's {schedule.expression}"
            rule = events.Rule(
                self,
                name,
                rule_name=names.rule(name),
                description=description,
                schedule=events.Schedule.expression(expression),
                enabled=schedule.enabled,
            )
            rule.add_target(
                targets.LambdaFunction(
                    lambdas[function.name],
                    event=scheduled_event_input(dict(schedule.input)),
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            )
            self.rules[name] = rule
