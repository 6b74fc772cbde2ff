"""Schedules: stable rule names, the scheduled event shape the handlers and the local cloud share,
and per-stack expression overrides (context ``scheduleExpressions``)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from functions import catalog
from functions.catalog import Schedule, schedule_name
from infra_cdk.config import ConfigError
from localcloud.events import schedule_event
from opsdeck.schedules import Rate, next_fire, parse
from tests.infra.conftest import SYNTHETIC, SYNTHETIC_BUCKETS, SYNTHETIC_CONTEXT, Synth


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


def test_a_context_override_replaces_the_expression_but_not_the_rule(synthetic: Synth):
    assert json.loads(SYNTHETIC_CONTEXT["scheduleExpressions"]) == {
        "marketplace-nightly": "cron(15 2 ? * MON-FRI *)"
    }
    rules = {
        r["Properties"]["Name"]: r["Properties"] for r in synthetic.of_type("AWS::Events::Rule").values()
    }
    nightly = rules["opsdeck-prod-marketplace-nightly"]  # same name: code addressing it still works
    assert nightly["ScheduleExpression"] == "cron(15 2 ? * MON-FRI *)"
    assert nightly["State"] == "DISABLED"  # the catalog's state
    assert nightly["Description"] == (
        "opsdeck: runs marketplace-nightly (cron(15 2 ? * MON-FRI *)); "
        "context scheduleExpressions overrides the catalog's cron(0 3 * * ? *)"
    )
    assert rules["opsdeck-prod-marketplace-sync"]["Description"] == (
        "opsdeck: runs marketplace-sync (rate(15 minutes))"
    )


def test_an_unknown_schedule_name_fails_the_synth_and_lists_the_known_ones(tmp_path):
    from infra_cdk.app import build_app

    context = {"bundle": "false", "scheduleExpressions": '{"marketplace-nigthly": "rate(1 day)"}'}
    with pytest.raises(ConfigError) as raised:
        build_app(context, functions=SYNTHETIC, buckets=SYNTHETIC_BUCKETS, outdir=str(tmp_path), nag=False)
    assert str(raised.value) == (
        "context scheduleExpressions: unknown schedule name(s) marketplace-nigthly; "
        "the catalog's schedules are marketplace-nightly, marketplace-sync"
    )


def test_product_monitor_schedule_defaults():
    """Issue 11: the planner runs daily at 00:30 UTC and samples health every 6 hours, unless a
    stack overrides it (docs/deploy.md, scheduleExpressions)."""
    schedules = catalog.schedules()
    daily, planner = schedules["product-monitor-daily"]
    assert (planner.name, daily.expression, daily.enabled) == (
        "product-monitor-planner",
        "cron(30 0 * * ? *)",
        True,
    )
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # spans the EU DST change: UTC does not move
    fires, t = [], start
    for _ in range(3):
        t = next_fire(daily.expression, t)
        fires.append(t)
    assert fires == [datetime(2026, 3, d, 0, 30, tzinfo=UTC) for d in (29, 30, 31)]

    health, sampler = schedules["product-monitor-health-sample"]
    assert (sampler.name, health.expression, health.enabled) == (
        "product-monitor-health",
        "rate(6 hours)",
        True,
    )
    parsed = parse(health.expression)
    assert isinstance(parsed, Rate) and timedelta(seconds=parsed.seconds) == timedelta(hours=6)


def _with_stalled_sync_alarm(minutes: int) -> tuple:
    """The synthetic catalog with a stalled alarm on marketplace-sync (rate(15 minutes))."""
    return tuple(
        replace(f, trigger=replace(f.trigger, stalled_after_minutes=minutes))
        if f.name == "marketplace-sync"
        else f
        for f in SYNTHETIC
    )


def _stalled_alarm(override: str, tmp_path) -> dict:
    from aws_cdk.assertions import Template

    from infra_cdk.app import build_app

    context = {"bundle": "false", "scheduleExpressions": json.dumps({"marketplace-sync": override})}
    functions = _with_stalled_sync_alarm(30)  # two missed runs of the catalog's 15 minutes
    _, stack = build_app(
        context, functions=functions, buckets=SYNTHETIC_BUCKETS, outdir=str(tmp_path), nag=False
    )
    alarms = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm")
    (alarm,) = (a["Properties"] for a in alarms.values() if a["Properties"]["AlarmName"].endswith("-stalled"))
    return alarm


@pytest.mark.parametrize(
    ("override", "minutes"),
    [
        ("rate(15 minutes)", 30),  # the catalog's own expression
        ("rate(1 hour)", 120),  # the catalog's ratio: two missed runs
        ("cron(0 */2 * * ? *)", 240),
        ("rate(5 minutes)", 30),  # never shorter than the catalog's window
        ("cron(0/15 8-17 ? * MON-FRI *)", 7470),  # quiet at night and over the weekend: Fri 17:45 → Mon 08:00
        ("rate(84 hours)", 10080),  # seven days: the most a CloudWatch alarm evaluates
    ],
)
def test_a_stalled_alarm_follows_its_schedule_override(override, minutes, tmp_path):
    """A slower schedule is not "stalled" between two of its runs."""
    alarm = _stalled_alarm(override, tmp_path)
    assert alarm["AlarmName"] == "opsdeck-dev-marketplace-sync-stalled"
    assert (alarm["MetricName"], alarm["Period"], alarm["EvaluationPeriods"]) == (
        "Invocations",
        minutes * 60,
        1,
    )
    assert alarm["AlarmDescription"].endswith(
        f"was not invoked for {minutes} minutes although its schedule should run"
    )


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (
            "rate(85 hours)",
            "context scheduleExpressions['marketplace-sync']: rate(85 hours) runs as much as 5100 minutes"
            " apart; its stalled alarm (30 minutes for the catalog's rate(15 minutes)) would need 10200"
            " minutes, more than the 10080 (seven days) a CloudWatch alarm evaluates: choose an"
            " expression that runs more often",
        ),
        (
            "cron(0 12 ? * MON *)",  # weekly
            "context scheduleExpressions['marketplace-sync']: cron(0 12 ? * MON *) runs as much as 10080"
            " minutes apart; its stalled alarm (30 minutes for the catalog's rate(15 minutes)) would need"
            " 20160 minutes, more than the 10080 (seven days) a CloudWatch alarm evaluates: choose an"
            " expression that runs more often",
        ),
        (
            "cron(0 12 1 1 ? 2027)",
            "context scheduleExpressions['marketplace-sync']: cron(0 12 1 1 ? 2027) fires fewer than twice,"
            " so its stalled alarm would never clear",
        ),
    ],
)
def test_an_override_a_stalled_alarm_cannot_follow_fails_the_synth(override, reason, tmp_path):
    with pytest.raises(ConfigError) as raised:
        _stalled_alarm(override, tmp_path)
    assert str(raised.value) == reason
