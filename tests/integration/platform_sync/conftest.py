"""platform_sync integration harness: real PostgreSQL (rolled back), moto SQS + EventBridge +
Secrets Manager, the platform simulator as a real HTTP server, functions through their entry
points (``api.handler`` with API Gateway v2 events, ``dispatcher.handler`` with scheduled
events, ``worker.handler`` with SQS events built from the messages really sent)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.platform_sync import simulator
from localcloud.events import http_event, schedule_event, sqs_event, sqs_record
from tests.support import LambdaContext, env

QUEUE = "platform-sync-jobs"
RULES = {
    "sync": "opsdeck-test-platform-sync-sync-schedule",
    "valid": "opsdeck-test-platform-sync-valid-schedule",
}
OPERATOR = {"sub": "op-1", "roles": "[platform-operator]", "iss": "opsdeck-local", "aud": "opsdeck"}
VIEWER = {"sub": "viewer-1", "roles": "[platform-viewer]", "iss": "opsdeck-local", "aud": "opsdeck"}


@pytest.fixture
def sim() -> Iterator[simulator.Served]:
    with simulator.serve(simulator.create_app()) as served:
        yield served


@dataclass
class PlatformSync:
    sim: simulator.Served
    db: Any
    queue_url: str
    sqs: Any
    events: Any
    received: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ HTTP

    def http(
        self, method: str, path: str, *, body: Any = None, query: str = "", claims: dict | None = OPERATOR
    ) -> tuple[int, Any]:
        from functions.platform_sync import api

        event = http_event(method, "/platform-sync/api/v1" + path, query=query, body=body, jwt_claims=claims)
        response = api.handler(event, LambdaContext("platform-sync-api", 29))
        text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return response["statusCode"], json.loads(text) if text else None

    def platform(self, key: str = "alpha", **overrides: Any) -> dict[str, Any]:
        body = {
            "name": key,
            "base_url": simulator.platform_url(self.sim.url, key),
            "connect_timeout_s": 1,
            "read_timeout_s": 5,  # generous: this machine is shared; timeout tests set their own
            **overrides,
        }
        status, created = self.http("POST", "/platforms", body=body)
        assert status == 201, created
        return created

    # ------------------------------------------------------------- schedule

    def tick(self, task_type: str, when: datetime) -> dict[str, Any]:
        from functions.platform_sync import dispatcher

        event = schedule_event(RULES[task_type], when=when, detail={"task_type": task_type})
        return dispatcher.handler(event, LambdaContext("platform-sync-dispatch-" + task_type, 60))

    # ---------------------------------------------------------------- queue

    def receive(self, max_messages: int = 10, visibility: int | None = None) -> list[dict[str, Any]]:
        """Messages as SQS delivers them to the event source mapping (receive counts kept)."""
        kwargs: dict[str, Any] = {}
        if visibility is not None:
            kwargs["VisibilityTimeout"] = visibility
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            **kwargs,
        ).get("Messages", [])
        return [
            sqs_record(
                m["Body"],
                queue_name=QUEUE,
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                receive_count=int(m["Attributes"]["ApproximateReceiveCount"]),
            )
            for m in got
        ]

    def work(self, records: list[dict[str, Any]]) -> list[str]:
        """Run the worker on ``records`` as the ESM would: delete what it did not report failed."""
        from functions.platform_sync import worker

        result = worker.handler(sqs_event(records), LambdaContext("platform-sync-worker", 60))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for r in records:
            if r["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=r["receiptHandle"])
        return sorted(failed)

    def drain(self) -> None:
        while records := self.receive():
            self.work(records)

    def job(self, job_id: str) -> dict[str, Any]:
        status, body = self.http("GET", f"/jobs/{job_id}", claims=VIEWER)
        assert status == 200, body
        return body

    def rule_state(self, task_type: str) -> str:
        return self.events.describe_rule(Name=RULES[task_type])["State"]


@pytest.fixture
def ps(sim, db, aws) -> Iterator[PlatformSync]:
    import boto3

    from functions.platform_sync import worker_run

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName=QUEUE + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    events = boto3.client("events", region_name="us-east-1")
    for rule in RULES.values():
        events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)", State="ENABLED")
    worker_run.reset()
    with env(
        JWT_ISSUER="opsdeck-local",
        JWT_AUDIENCE="opsdeck",
        JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET="platform-sync-test-secret-platform-sync-test",
        OUTBOUND_ALLOW_LOCAL="true",
        PLATFORM_SYNC_JOBS_QUEUE_URL=url,
        PLATFORM_SYNC_SYNC_SCHEDULE_RULE_NAME=RULES["sync"],
        PLATFORM_SYNC_VALID_SCHEDULE_RULE_NAME=RULES["valid"],
        PLATFORM_SYNC_SECRET_PREFIX="opsdeck-test/platform-sync/",
        PLATFORM_SYNC_MAX_RECEIVE_COUNT="3",
    ):
        yield PlatformSync(sim, db, url, sqs, events)
    worker_run.reset()


@pytest.fixture
def minute() -> datetime:
    return datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
