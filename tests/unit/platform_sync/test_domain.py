"""platform_sync's rules without I/O: transitions, job ids, due minutes, outcome mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.platform_sync import domain
from functions.platform_sync.domain import TransitionRefused, transition


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("running", "pause", "paused"),
        ("paused", "pause", None),
        ("paused", "resume", "running"),
        ("running", "resume", None),
        ("running", "stop", "stopped"),
        ("paused", "stop", "stopped"),
        ("stopped", "stop", None),
        ("stopped", "start", "running"),
        ("paused", "start", "running"),
        ("running", "start", None),
    ],
)
def test_transitions(state, action, expected):
    assert transition(state, action) == expected


@pytest.mark.parametrize("action", ["resume", "pause"])
def test_stopped_only_comes_back_with_start(action):
    with pytest.raises(TransitionRefused):
        transition("stopped", action)


def test_rule_is_enabled_only_while_running_and_enabled():
    assert domain.rule_should_be_enabled("running", True)
    assert not domain.rule_should_be_enabled("running", False)
    assert not domain.rule_should_be_enabled("paused", True)
    assert not domain.rule_should_be_enabled("stopped", True)


def test_scheduled_job_ids_are_deterministic_per_minute():
    a = domain.scheduled_job_id("sync", 7, datetime(2026, 12, 3, 9, 1, 5, tzinfo=UTC))
    b = domain.scheduled_job_id("sync", 7, datetime(2026, 12, 3, 9, 1, 59, 999, tzinfo=UTC))
    assert a == b == "sync-7-20261203T0901Z"
    assert domain.valid_job_id(a)
    assert domain.valid_job_id(domain.manual_job_id("valid", 7, "0" * 32))
    assert not domain.valid_job_id("sync-7-x") and not domain.valid_job_id("backup-7-20261203T0901Z")


def test_due_minutes_and_next_run():
    start = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert domain.is_due(start, 5) and not domain.is_due(start.replace(minute=3), 5)
    assert domain.next_run(start, 5) == start.replace(minute=5)
    assert domain.next_run(start.replace(second=30), 1) == start.replace(minute=1)


@pytest.mark.parametrize(
    ("status", "outcome", "retry"),
    [
        (200, "succeeded", False),
        (204, "succeeded", False),
        (302, "failed", False),
        (404, "failed", False),
        (422, "failed", False),
        (429, "server_error", True),
        (500, "server_error", True),
        (503, "server_error", True),
    ],
)
def test_status_mapping(status, outcome, retry):
    verdict = domain.classify_status(status)
    assert (verdict.outcome, verdict.retry) == (outcome, retry)


def test_backoff_doubles_and_is_capped():
    assert [domain.retry_delay_s(10, n) for n in (1, 2, 3)] == [10, 20, 40]
    assert domain.retry_delay_s(600, 5) == 900


def test_metrics_are_emf_lines_with_the_task_type_and_respect_the_disabled_flag(capsys, monkeypatch):
    import json

    from functions.platform_sync import metrics

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics.count("JobsFailed", "valid", 2)
    metrics.count("JobsSucceeded", "sync", 0)  # nothing to say: no line
    [line] = capsys.readouterr().out.splitlines()
    emf = json.loads(line)
    assert (emf["JobsFailed"], emf["task_type"], emf["service"]) == ([2.0], "valid", "platform_sync")
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "task_type"]]
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.count("JobsFailed", "valid", 1)
    assert capsys.readouterr().out == ""
