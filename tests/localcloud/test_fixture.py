"""The ``local_cloud`` fixture (tests/conftest.py): the real catalog, in-process, virtual clock."""

from __future__ import annotations

import json

import pytest

from functions.catalog import FUNCTIONS
from localcloud.events import sqs_event, sqs_record


def test_the_real_catalog_runs_in_process(local_cloud):
    status, headers, body = local_cloud.request("GET", "/ops/health")
    assert status == 200, body
    assert json.loads(body)["checks"]["database"]["status"] == "ok"
    assert headers["x-request-id"] == headers["apigw-requestid"]
    [entry] = local_cloud.journal()
    assert (entry["function"], entry["trigger"], entry["status"], entry["outcome"]) == (
        "ops-api",
        "http",
        200,
        "ok",
    )
    assert local_cloud.clock.virtual
    assert local_cloud.env["JWT_ISSUER"] == "opsdeck-local"


def test_every_catalog_queue_and_schedule_exists(local_cloud):
    queues = {f.trigger.name for f in FUNCTIONS if f.trigger.kind == "queue"}
    for name in queues:
        assert local_cloud.depth(name) == (0, 0)
        assert local_cloud.depth(name + "-dlq") == (0, 0)
    state = local_cloud.describe()
    scheduled = {f.trigger.name or f.name for f in FUNCTIONS if f.trigger.kind == "schedule"}
    assert set(state["schedules"]) == scheduled
    assert {s["state"] for s in state["schedules"].values()} <= {"ENABLED", "DISABLED"}


def test_invoke_returns_the_handler_result(local_cloud):
    queue_function = next((f for f in FUNCTIONS if f.trigger.kind == "queue"), None)
    if queue_function is None:
        pytest.skip("the catalog declares no queue consumer")
    empty = sqs_event(
        [sqs_record("not json", queue_name=queue_function.trigger.queue_name, message_id="m-1")]
    )
    result = local_cloud.invoke(queue_function.name, empty)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
