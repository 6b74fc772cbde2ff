"""Loud about gaps: a catalog feature the emulation does not implement is an error at start."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from functions.catalog import FUNCTIONS, Queue, Route, Schedule
from localcloud import LocalCloud, UnsupportedFeature, features
from tests.localcloud.catalog import API, TICK, WORKER


@dataclass(frozen=True)
class FilteredQueue(Queue):
    """A catalog Queue grown a field the local cloud does not know (ESM filter criteria)."""

    filter_criteria: str | None = None


@dataclass(frozen=True)
class Stream:
    """A trigger kind the local cloud does not know."""

    stream: str = "orders"
    kind = "stream"


def test_the_real_catalog_is_fully_emulated():
    assert features.problems(FUNCTIONS) == []


def test_an_unknown_field_in_use_is_refused_at_start(tmp_path):
    consumer = replace(WORKER, trigger=FilteredQueue(name="ops-test-jobs", filter_criteria='{"kind": ["a"]}'))
    cloud = LocalCloud(root=tmp_path, catalog=(consumer,), virtual_clock=True)
    with pytest.raises(UnsupportedFeature) as error:
        cloud.start()
    assert str(error.value) == (
        "function 'ops-test-worker': FilteredQueue.filter_criteria='{\"kind\": [\"a\"]}' "
        "is not emulated by the local cloud"
    )


def test_an_unknown_field_left_at_its_default_is_fine():
    consumer = replace(WORKER, trigger=FilteredQueue(name="ops-test-jobs"))
    assert features.problems([consumer]) == []


def test_unknown_trigger_kind_authorizer_and_bad_schedule_are_named():
    found = features.problems(
        [
            replace(WORKER, trigger=Stream()),
            replace(
                API, trigger=replace(API.trigger, routes=(Route("GET", "/ops/test/x", authorizer="iam"),))
            ),
            replace(TICK, trigger=Schedule(expression="cron(0 10 * * * *)")),
        ]
    )
    assert found == [
        "function 'ops-test-worker': Stream is not emulated by the local cloud",
        "function 'ops-test-api': authorizer 'iam' is not emulated (only 'jwt')",
        "function 'ops-test-tick': 'cron(0 10 * * * *)': exactly one of day-of-month and day-of-week "
        "must be ? (AWS does not combine them)",
    ]


def test_several_problems_are_counted_in_the_error():
    with pytest.raises(UnsupportedFeature, match=r"\(and 1 more\)$"):
        features.check([replace(WORKER, trigger=Stream()), replace(TICK, trigger=Stream())])


def test_resources_of_different_kinds_may_share_a_name(cloud):
    """A schedule named like its function: each environment variable gets its own kind's resource."""
    caller = cloud.function_env("ops-test-caller")
    toggler = cloud.function_env("ops-test-toggler")
    assert caller["OPS_TEST_TICK_FUNCTION_NAME"] == "ops-test-tick"
    assert toggler["OPS_TEST_TICK_RULE_NAME"] == cloud.rule_name("ops-test-tick")
    assert toggler["OPS_TEST_TICK_RULE_NAME"] != "ops-test-tick"
