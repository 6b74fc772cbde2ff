"""Schedules: an EventBridge rule per catalog ``Schedule``, named ``<stack>-<schedule name>``.

The stable name lets code enable/disable the rule by name (``<SCHEDULE>_RULE_NAME``, granted by
``controls_schedules``). The target receives the scheduled event unchanged except for
``detail``, which carries the catalog's ``Schedule.input``: an input transformer copies
version, id, detail-type, source, account, time, region and resources from the event and
inserts the input as ``detail`` — the same shape ``localcloud.events.schedule_event`` builds,
so handlers see one event shape locally and on AWS. Failed deliveries are retried twice within
an hour (EventBridge → Lambda asynchronous invoke).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.catalog import Function, Schedule, schedule_name

from .names import Names

#: Fields of EventBridge's scheduled event passed through as they are.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources")


def catalog_schedules(functions: tuple[Function, ...]) -> list[tuple[str, Schedule, Function]]:
    return [(schedule_name(f), f.trigger, f) for f in functions if isinstance(f.trigger, Schedule)]


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
    ) -> None:
        super().__init__(scope, id)
        self.rules: dict[str, events.Rule] = {}
        for name, schedule, function in catalog_schedules(functions):
            rule = events.Rule(
                self,
                name,
                rule_name=names.rule(name),
                description=f"opsdeck: runs {function.name} ({schedule.expression})",
                schedule=events.Schedule.expression(schedule.expression),
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
