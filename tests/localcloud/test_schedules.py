"""EventBridge scheduled rules and Lambda invocations on the local endpoint."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import boto3
import pytest

from tests.localcloud.conftest import START
from tests.localcloud.handlers import calls


def client(cloud, service):
    return boto3.session.Session().client(
        service,
        endpoint_url=cloud.aws_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def fired(function: str = "ops-test-tick") -> list[str]:
    return [c["event"]["time"] for c in calls("schedule", function)]


def test_rate_schedule_fires_every_period_from_rule_creation(cloud):
    cloud.advance(299)
    assert fired() == []
    cloud.advance(1)
    cloud.advance(600)
    assert fired() == ["2026-01-05T00:05:00Z", "2026-01-05T00:10:00Z", "2026-01-05T00:15:00Z"]


def test_scheduled_event_has_the_eventbridge_shape(cloud):
    cloud.advance(300)
    [call] = calls("schedule", "ops-test-tick")
    event = call["event"]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "000000000000"
    assert event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/opsdeck-local-ops-test-tick"]
    assert event["detail"] == {"job": "tick"}
    entry = next(e for e in cloud.journal() if e["function"] == "ops-test-tick")
    assert (entry["trigger"], entry["event_id"], entry["outcome"]) == ("schedule", event["id"], "ok")
    assert entry["start"] == "2026-01-05T00:05:00.000Z"


def test_cron_schedule_fires_at_its_utc_times(cloud):
    cloud.advance(3 * 86400)
    times = [c["event"]["time"] for c in calls("schedule", "ops-test-nightly")]
    # the nightly job fails on purpose: each night = 1 attempt + 2 async retries (1 and 2 minutes later)
    assert times[:3] == ["2026-01-05T02:30:00Z"] * 3
    attempts = [e for e in cloud.journal() if e["function"] == "ops-test-nightly"]
    assert [e["start"] for e in attempts[:3]] == [
        "2026-01-05T02:30:00.000Z",
        "2026-01-05T02:31:00.000Z",
        "2026-01-05T02:33:00.000Z",
    ]
    assert [e.get("attempt", 1) for e in attempts[:3]] == [1, 2, 3]
    assert len(attempts) == 9  # three nights, three attempts each
    assert {e["outcome"] for e in attempts} == {"error"}


def test_a_rule_disabled_through_the_eventbridge_api_stops_firing(cloud):
    cloud.advance(300)
    assert len(fired()) == 1
    assert cloud.invoke("ops-test-toggler", {}) == {"rule": "opsdeck-local-ops-test-tick", "enabled": False}
    cloud.advance(3600)
    assert len(fired()) == 1
    rule = client(cloud, "events").describe_rule(Name="opsdeck-local-ops-test-tick")
    assert rule["State"] == "DISABLED"
    cloud.invoke("ops-test-toggler", {"enable": True})
    cloud.advance(300)
    assert len(fired()) == 2


def test_changing_the_expression_through_the_api_replans_the_rule(cloud):
    client(cloud, "events").put_rule(Name="opsdeck-local-ops-test-tick", ScheduleExpression="rate(1 hour)")
    cloud.advance(3599)
    assert fired() == []
    cloud.advance(1)
    assert fired() == ["2026-01-05T01:00:00Z"]


def test_fire_runs_a_schedule_now_whatever_its_state(cloud):
    client(cloud, "events").disable_rule(Name="opsdeck-local-ops-test-tick")
    assert cloud.fire("ops-test-tick") == {"ticked": "2026-01-05T00:00:00Z"}
    assert cloud.fire("opsdeck-local-ops-test-tick") == {"ticked": "2026-01-05T00:00:00Z"}
    from localcloud import InvocationError, LocalCloudError

    with pytest.raises(InvocationError, match="scheduled job failed") as failure:
        cloud.fire("ops-test-nightly")
    assert failure.value.payload["errorType"] == "ValueError"
    with pytest.raises(LocalCloudError, match="unknown schedule 'nope'"):
        cloud.fire("nope")


def test_lambda_invoke_api_runs_catalog_functions(cloud):
    lam = client(cloud, "lambda")
    response = lam.invoke(
        FunctionName="ops-test-tick", Payload=b'{"time": "t", "detail": {}}', LogType="Tail"
    )
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read()) == {"ticked": "t"}
    logs = base64.b64decode(response["LogResult"]).decode()
    assert logs.startswith("START RequestId:") and '"message":"ticked"' in logs and "REPORT RequestId" in logs
    failed = lam.invoke(FunctionName="ops-test-tick", Payload=b'{"time": "t", "detail": {"crash": true}}')
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="ops-test-nope", Payload=b"{}")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="ops-test-tick", Payload=b"{not json")
    assert (
        lam.invoke(
            FunctionName="arn:aws:lambda:us-east-1:000000000000:function:ops-test-tick",
            InvocationType="DryRun",
        )["StatusCode"]
        == 204
    )


def test_a_function_invokes_another_synchronously_and_asynchronously(cloud):
    assert cloud.invoke("ops-test-caller", {}) == {"status": 200, "payload": {"batchItemFailures": []}}
    assert cloud.invoke("ops-test-caller", {"type": "Event"}) == {"status": 202, "payload": None}
    worker_runs = len(calls("queue", "ops-test-worker"))
    cloud.advance(0)  # the asynchronous invocation runs on the (virtual) clock
    assert len(calls("queue", "ops-test-worker")) == worker_runs + 1


def test_virtual_clock_only_moves_when_told(cloud):
    assert cloud.clock.now() == START
    cloud.advance(90)
    assert cloud.clock.now() == datetime(2026, 1, 5, 0, 1, 30, tzinfo=UTC)
