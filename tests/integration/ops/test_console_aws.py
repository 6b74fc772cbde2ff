"""The ops console's AWS backend against moto (SQS, EventBridge, Logs Insights, CloudWatch), and
botocore's Stubber where moto does not implement a call (``p95`` in GetMetricData, Lambda's
asynchronous ``Invoke`` of a function that moto would need Docker to run)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from functions.ops import backend as ops_backend
from functions.ops.aws_backend import AwsBackend
from opsdeck import aws as opsdeck_aws
from opsdeck.errors import InvalidInput, NotFound
from tests.support import LambdaContext, env

PREFIX = "opsdeck-test-"
QUEUE, DLQ = "backoffice-changes", "backoffice-changes-dlq"
CONSUMER_LOGS = f"/aws/lambda/{PREFIX}backoffice-consumer"


@pytest.fixture
def stack(aws):
    """This stack's catalog queues and rules, as CDK names them (``<stack>-<name>``)."""
    from functions import catalog

    sqs = opsdeck_aws.client("sqs")
    for q, _ in catalog.queues_of(catalog.FUNCTIONS):
        dlq = sqs.create_queue(QueueName=PREFIX + q.dlq_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": q.max_receive_count})
        sqs.create_queue(QueueName=PREFIX + q.queue_name, Attributes={"RedrivePolicy": policy})
    events = opsdeck_aws.client("events")
    for name, (schedule, _) in catalog.schedules().items():
        events.put_rule(Name=PREFIX + name, ScheduleExpression=schedule.expression, State="ENABLED")
    logs = opsdeck_aws.client("logs")
    logs.create_log_group(logGroupName=CONSUMER_LOGS)
    logs.create_log_stream(logGroupName=CONSUMER_LOGS, logStreamName="s")
    ops_backend.reset()
    yield AwsBackend(prefix=PREFIX)
    ops_backend.reset()


def url(name: str) -> str:
    return opsdeck_aws.client("sqs").get_queue_url(QueueName=PREFIX + name)["QueueUrl"]


def dead_letter(body: str) -> str:
    """Send to the source queue and receive it past maxReceiveCount, as the consumer would."""
    sqs = opsdeck_aws.client("sqs")
    sent = sqs.send_message(QueueUrl=url(QUEUE), MessageBody=body)["MessageId"]
    for _ in range(6):
        sqs.receive_message(QueueUrl=url(QUEUE), VisibilityTimeout=0)
    return sent


def test_queues_report_depth_per_queue_and_dlq(stack):
    sqs = opsdeck_aws.client("sqs")
    sqs.send_message(QueueUrl=url(QUEUE), MessageBody="{}")
    sqs.send_message(QueueUrl=url(QUEUE), MessageBody="{}")
    sqs.receive_message(QueueUrl=url(QUEUE), VisibilityTimeout=300)
    opsdeck_aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": PREFIX + QUEUE}],
                "Value": 42.0,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
            }
        ],
    )
    queues = {q["name"]: q for q in stack.queues()}
    assert (queues[QUEUE]["visible"], queues[QUEUE]["in_flight"]) == (1, 1)
    assert queues[QUEUE]["oldest_age_s"] == 42.0
    assert queues[DLQ]["dlq"] and queues[DLQ]["visible"] == 0 and queues[DLQ]["oldest_age_s"] is None


def test_peek_a_dlq_with_the_reason_the_consumer_logged_and_refuse_a_source_queue(stack):
    message_id = dead_letter('{"op": "c", "after": ')
    opsdeck_aws.client("logs").put_log_events(
        logGroupName=CONSUMER_LOGS,
        logStreamName="s",
        logEvents=[
            {
                "timestamp": int(time.time() * 1000),
                "message": json.dumps(
                    {
                        "level": "WARNING",
                        "message": "record failed",
                        "message_id": message_id,
                        "reason": "not JSON",
                    }
                ),
            }
        ],
    )
    [message] = stack.peek(DLQ, 10)
    assert message["message_id"] == message_id
    assert message["body"] == '{"op": "c", "after": '
    assert message["failure"] == "not JSON"
    assert message["receive_count"] >= 1
    with pytest.raises(InvalidInput, match="SQS has no peek"):
        stack.peek(QUEUE, 10)
    with pytest.raises(NotFound):
        stack.peek("nope", 10)


def test_replay_is_the_clis_code_against_sqs(stack):
    dead_letter(json.dumps({"kind": "payment", "n": 1}))
    dead_letter(json.dumps({"kind": "refund", "n": 2}))
    assert stack.replay(DLQ, filter="kind == 'payment'", dry_run=True)["matched"] == 1
    result = stack.replay(DLQ, filter="kind == 'payment'", limit=5)
    assert (result["matched"], result["moved"], result["method"]) == (1, 1, "receive-send-delete")
    body = opsdeck_aws.client("sqs").receive_message(QueueUrl=url(QUEUE))["Messages"][0]["Body"]
    assert json.loads(body) == {"kind": "payment", "n": 1}
    with pytest.raises(NotFound, match="not a dead-letter queue"):
        stack.replay(QUEUE)


def test_schedules_state_next_fire_and_enable_disable(stack):
    listed = {s["name"]: s for s in stack.schedules()}
    orders = listed["marketplace-orders-schedule"]
    assert orders["rule"] == PREFIX + "marketplace-orders-schedule"
    assert (orders["state"], orders["expression"], orders["function"]) == (
        "ENABLED",
        "rate(15 minutes)",
        "marketplace-orders-sync",
    )
    assert orders["last_fire"] is None and orders["next_fire"] is None  # a rate without a known fire
    opsdeck_aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Events",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "RuleName", "Value": orders["rule"]}],
                "Value": 1.0,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=3),
            }
        ],
    )
    orders = {s["name"]: s for s in stack.schedules()}["marketplace-orders-schedule"]
    assert orders["last_fire"] is not None and orders["next_fire"] > orders["last_fire"]
    disabled = stack.set_enabled("marketplace-orders-schedule", False)
    assert (disabled["state"], disabled["next_fire"]) == ("DISABLED", None)
    rule = opsdeck_aws.client("events").describe_rule(Name=PREFIX + "marketplace-orders-schedule")
    assert rule["State"] == "DISABLED"
    assert stack.set_enabled("marketplace-orders-schedule", True)["state"] == "ENABLED"


def test_fire_invokes_the_function_asynchronously_with_the_rules_event(stack):
    from botocore.stub import ANY, Stubber

    client = opsdeck_aws.client("lambda")
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": PREFIX + "marketplace-orders-sync", "InvocationType": "Event", "Payload": ANY},
        )
        fired = stack.fire("marketplace-orders-schedule")
        stub.assert_no_pending_responses()
    assert fired["function"] == "marketplace-orders-sync"


def test_function_stats_ask_cloudwatch_for_sums_and_p95(stack):
    from botocore.stub import ANY, Stubber

    from functions import catalog

    def query(qid, metric, stat, name):
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": PREFIX + name}],
                },
                "Period": 3600,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    expected = [
        query(f"{key}{i}", metric, stat, f.name)
        for i, f in enumerate(catalog.FUNCTIONS)
        for key, metric, stat in (
            ("i", "Invocations", "Sum"),
            ("e", "Errors", "Sum"),
            ("d", "Duration", "p95"),
        )
    ]
    values = {"Invocations": 12.0, "Errors": 2.0, "Duration": 87.5}
    now = datetime.now(UTC)
    response = {
        "MetricDataResults": [
            {
                "Id": q["Id"],
                "Timestamps": [now],
                "Values": [values[q["MetricStat"]["Metric"]["MetricName"]]],
                "StatusCode": "Complete",
            }
            for q in expected
        ]
    }
    client = opsdeck_aws.client("cloudwatch")
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            response,
            {"MetricDataQueries": expected, "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"},
        )
        stats = stack.function_stats(3600)
        stub.assert_no_pending_responses()
    assert stats["ops-api"] == {"invocations": 12, "errors": 2, "p95_ms": 87.5}
    assert set(stats) == {f.name for f in catalog.FUNCTIONS}


def test_one_invocations_lines_from_logs_insights_and_no_journal_on_aws(stack):
    opsdeck_aws.client("logs").put_log_events(
        logGroupName=CONSUMER_LOGS,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "START RequestId: r-1 Version: $LATEST"}
        ],
    )
    found = stack.invocation("r-1", "backoffice-consumer")
    assert found["logs"] == ["START RequestId: r-1 Version: $LATEST"]
    with pytest.raises(InvalidInput, match="name the function"):
        stack.invocation("r-1", None)
    with pytest.raises(ops_backend.NotAvailable):
        stack.invocations(function=None, trigger=None, outcome=None, limit=10)
    with pytest.raises(ops_backend.NotAvailable):
        stack.reinvoke("r-1")


def test_the_handler_on_aws_answers_with_the_aws_backend(stack, db):
    from functions.ops import api
    from localcloud.events import http_event
    from opsdeck.auth import issue_dev_token

    secret = "console-aws-test-secret-console-aws-test"
    with env(
        OPSDECK_RESOURCE_PREFIX=PREFIX,
        JWT_ISSUER="opsdeck-test",
        JWT_AUDIENCE="opsdeck",
        JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET=secret,
        JWT_JWKS_URL=None,
    ):
        ops_backend.reset()
        token = issue_dev_token("bob", ["ops-viewer"])
        event = http_event(
            "GET", "/ops/queues", headers=[("authorization", f"Bearer {token}")], route_key="GET /ops/queues"
        )
        response = api.handler(event, LambdaContext("ops-api"))
        assert response["statusCode"] == 200, response["body"]
        assert {q["name"] for q in json.loads(response["body"])["queues"]} >= {QUEUE, DLQ}
        event = http_event(
            "GET",
            "/ops/invocations",
            headers=[("authorization", f"Bearer {token}")],
            route_key="GET /ops/invocations",
        )
        response = api.handler(event, LambdaContext("ops-api"))
        assert response["statusCode"] == 501
        assert json.loads(response["body"])["type"].endswith("/not-available")
        whoami = api.handler(
            http_event(
                "GET",
                "/ops/whoami",
                headers=[("authorization", f"Bearer {token}")],
                route_key="GET /ops/whoami",
            ),
            LambdaContext("ops-api"),
        )
        assert json.loads(whoami["body"])["mode"] == "aws"


def test_a_paced_replay_through_the_handler_stops_within_lambdas_time_and_its_progress_says_so(stack, db):
    """POST the replay through Mangum with 5 s left in the invocation (a 2 s budget for the
    replay), then GET its progress as a viewer: what the page reads from another instance."""
    import uuid

    from functions.ops import api
    from localcloud.events import http_event
    from opsdeck.auth import issue_dev_token

    sent = [dead_letter(json.dumps({"kind": "payment", "n": i})) for i in range(4)]
    replay_id = str(uuid.uuid4())
    secret = "console-aws-test-secret-console-aws-test"
    with env(
        OPSDECK_RESOURCE_PREFIX=PREFIX,
        JWT_ISSUER="opsdeck-test",
        JWT_AUDIENCE="opsdeck",
        JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET=secret,
        JWT_JWKS_URL=None,
    ):
        ops_backend.reset()
        admin = issue_dev_token("alice", ["ops-admin"])
        path = f"/ops/queues/{DLQ}/replay"
        event = http_event(
            "POST",
            path,
            headers=[("authorization", f"Bearer {admin}"), ("x-opsdeck-console", "1")],
            body={"filter": "kind == 'payment'", "rate": "2/s", "replay_id": replay_id},
            route_key="POST /ops/queues/{queue}/replay",
            path_parameters={"queue": DLQ},
        )
        response = api.handler(event, LambdaContext("ops-api", timeout_s=5))
        assert response["statusCode"] == 200, response["body"]
        result = json.loads(response["body"])
        # the first chunk of 2 leaves at 1 s; the second would at 2 s, past the budget
        assert (result["matched"], result["moved"], result["stopped"]) == (4, 2, "time-budget")
        viewer = issue_dev_token("bob", ["ops-viewer"])
        event = http_event(
            "GET",
            f"/ops/replays/{replay_id}",
            headers=[("authorization", f"Bearer {viewer}")],
            route_key="GET /ops/replays/{replay_id}",
            path_parameters={"replay_id": replay_id},
        )
        response = api.handler(event, LambdaContext("ops-api"))
        assert response["statusCode"] == 200, response["body"]
        progress = json.loads(response["body"])
    assert (progress["done"], progress["outcome"], progress["stopped"]) == (True, "ok", "time-budget")
    assert (progress["examined"], progress["moved"], progress["total"]) == (4, 2, 4)
    assert progress["message_ids"] == result["message_ids"] and set(progress["message_ids"]) <= set(sent)
    assert progress["audit_id"] == result["audit_id"]
    depth = opsdeck_aws.client("sqs").get_queue_attributes(
        QueueUrl=url(DLQ), AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "2"  # the rest is back, nothing lost


def test_series_per_minute_from_cloudwatch(stack):
    now = datetime.now(UTC)
    opsdeck_aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": PREFIX + "backoffice-consumer"}],
                "Value": 7.0,
                "Timestamp": now - timedelta(minutes=2),
            }
        ],
    )
    opsdeck_aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": PREFIX + DLQ}],
                "Value": 3.0,
                "Timestamp": now - timedelta(minutes=1),
            }
        ],
    )
    series = stack.series(10)
    assert len(series["minutes"]) == 10
    assert sum(series["invocations"]["backoffice-consumer"]) == 7
    assert "backoffice-consumer" not in series["errors"]
    assert [p[1] for p in series["queue_depth"][DLQ]] == [3]
