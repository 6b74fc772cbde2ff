"""The ops backend's pure parts: the capability extension point, failure reasons, p95."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest

from functions import catalog
from functions.ops import backend


@pytest.fixture
def capability_module(monkeypatch):
    """A ``functions/<capability>/ops.py`` as platform_sync will ship one."""
    module = types.ModuleType("functions.marketplace.ops")
    module.__spec__ = importlib.machinery.ModuleSpec("functions.marketplace.ops", loader=None)
    monkeypatch.setitem(sys.modules, "functions.marketplace.ops", module)
    return module


def test_a_capability_can_show_its_own_state_beside_its_schedules(capability_module):
    capability_module.schedule_state = lambda name: (
        {"sync": "paused", "validate": "running"} if name else None
    )
    _, function = backend.schedule_entry("marketplace-orders-schedule")
    assert backend.capability_state(function, "marketplace-orders-schedule") == {
        "sync": "paused",
        "validate": "running",
    }


def test_a_failing_capability_state_does_not_take_the_view_down(capability_module):
    def broken(name):
        raise RuntimeError("db down")

    capability_module.schedule_state = broken
    _, function = backend.schedule_entry("marketplace-orders-schedule")
    assert backend.capability_state(function, "marketplace-orders-schedule") == {"error": "RuntimeError"}


def test_capabilities_without_an_ops_module_show_nothing():
    function = catalog.by_name()["backoffice-consumer"]
    assert backend.capability_state(function, "whatever") is None


def test_failure_reason_is_the_one_logged_for_that_message():
    lines = [
        json.dumps({"message": "record failed", "message_id": "m-2", "reason": "other"}),
        "[WARNING]\tplain text mentioning m-1",
        json.dumps({"message": "record failed", "message_id": "m-1", "reason": "amount is not an integer"}),
    ]
    assert backend.failure_reason(lines, "m-1") == "amount is not an integer"
    assert backend.failure_reason(lines, "m-3") is None


def test_p95_is_the_nearest_rank():
    assert backend.p95([]) is None
    assert backend.p95([5.0]) == 5.0
    assert backend.p95([float(i) for i in range(1, 101)]) == 95.0
    assert backend.p95([float(i) for i in range(1, 21)]) == 19.0


def test_unknown_names_are_404s():
    from opsdeck.errors import NotFound

    with pytest.raises(NotFound):
        backend.queue_entry("nope")
    with pytest.raises(NotFound):
        backend.schedule_entry("nope")
    assert backend.queue_entry("backoffice-changes-dlq")["source"] == "backoffice-changes"
