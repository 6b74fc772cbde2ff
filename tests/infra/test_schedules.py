"""Schedules: stable rule names, and the scheduled event shape the handlers and the local cloud share."""

from __future__ import annotations

import json
import re

from functions.catalog import Schedule, schedule_name
from localcloud.events import schedule_event
from tests.infra.conftest import Synth


def _render(template: str, paths: dict[str, str], event: dict) -> dict:
    """Apply an EventBridge input transformer to ``event`` (JSON values inserted as JSON)."""

    def value(match: re.Match) -> str:
        path = paths[match[1]]
        assert path.startswith("$."), path
        return json.dumps(event[path[2:]])

    return json.loads(re.sub(r"<([A-Za-z0-9_-]+)>", value, template))


def test_rules_deliver_the_scheduled_event_with_the_catalog_input_as_detail(synth: Synth):
    rules = {r["Properties"]["Name"]: r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()}
    for f in synth.functions:
        if not isinstance(f.trigger, Schedule):
            continue
        rule_name = synth.name("rule", schedule_name(f))
        (target,) = rules[rule_name]["Targets"]
        transformer = target["InputTransformer"]
        # what EventBridge sends the target for this rule, shaped like AWS's scheduled event
        fired = schedule_event(rule_name, detail={})
        delivered = _render(transformer["InputTemplate"], transformer["InputPathsMap"], fired)
        assert delivered == {**fired, "detail": dict(f.trigger.input)}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_rule_names_are_stack_prefixed_and_disabled_schedules_stay_disabled(synthetic: Synth):
    rules = {
        r["Properties"]["Name"]: r["Properties"] for r in synthetic.of_type("AWS::Events::Rule").values()
    }
    assert rules["opsdeck-prod-marketplace-nightly"]["State"] == "DISABLED"
    assert rules["opsdeck-prod-marketplace-sync"]["State"] == "ENABLED"
    assert rules["opsdeck-prod-marketplace-sync"]["ScheduleExpression"] == "rate(15 minutes)"
