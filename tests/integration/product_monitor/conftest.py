"""product_monitor integration harness: the Apify simulator over real HTTP, SQS from moto, the
functions through their entry points (planner/worker handlers with events, the API through Mangum).

* ``sim`` — a fresh simulator served by uvicorn on 127.0.0.1:0, generous limits, no faults.
* ``pm`` — that simulator's environment (``simulator.local_environment``), the test's rolled-back
  database and Redis, moto's SQS with the catalog queue, and helpers: ``plan()`` (the planner's
  handler with its sample event), ``drain()`` (every queued message through the worker's handler
  as SQS events, like the event source mapping), SQL helpers, ``call()`` for the HTTP API.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from functions.product_monitor import ingest, simulator, telemetry
from localcloud.events import sqs_record
from tests.support import LambdaContext, env, load_event

QUEUE = "product-monitor-jobs"
EXPORTS_BUCKET = "opsdeck-test-product-monitor-exports"
JWT = {
    "JWT_ISSUER": "opsdeck-local",
    "JWT_AUDIENCE": "opsdeck",
    "JWT_HS256_SECRET": "product-monitor-test-secret-0123456789abcdef",
    "JWT_ALGORITHMS": "HS256",
}


@pytest.fixture
def sim() -> Iterator[simulator.Simulator]:
    instance = simulator.Simulator(seed=11, rate_per_s=1000, burst=1000)
    with simulator.serve(simulator.create_app(instance)) as served:
        instance.url = served.url  # type: ignore[attr-defined]
        yield instance


@dataclass
class Monitor:
    sim: simulator.Simulator
    db: Any
    sqs: Any
    queue_url: str
    delivered: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ data

    def sql(self, statement: str, **params: Any) -> list[Any]:
        return list(self.db.execute(text(statement), params))

    def scalar(self, statement: str, **params: Any) -> Any:
        return self.db.execute(text(statement), params).scalar()

    def track(self, asins: list[str]) -> None:
        from datetime import UTC, datetime

        from functions.product_monitor import repository

        repository.track(self.db, asins, "test", datetime.now(UTC))

    # ---------------------------------------------------------------- invoke

    def plan(self, kind: str = "daily") -> dict[str, Any]:
        from functions.product_monitor import planner

        name = "product-monitor-planner" if kind == "daily" else "product-monitor-health"
        event = load_event(f"{name}/scheduled.json")
        return planner.handler(event, LambdaContext(name, timeout_s=120))

    def receive(self) -> list[dict[str, Any]]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                out.append(m)

    def work(self, bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
        from functions.product_monitor import worker

        event = {"Records": [sqs_record(b, queue_name=QUEUE, receive_count=receive_count) for b in bodies]}
        result = worker.handler(event, LambdaContext("product-monitor-worker", timeout_s=600))
        self.delivered.extend({"body": b, "result": result} for b in bodies)
        return result

    def drain(self) -> list[dict[str, Any]]:
        """Every queued message through the worker, one per invocation (batch_size 1)."""
        results = []
        for message in self.receive():
            results.append(self.work([message["Body"]]))
        return results

    # ------------------------------------------------------------------ HTTP

    def call(
        self, method: str, path: str, *, roles: list[str] | None = ("viewer",), **kw: Any
    ) -> tuple[int, dict[str, str], Any]:
        from functions.product_monitor import api
        from localcloud.events import http_event
        from opsdeck.auth import issue_dev_token

        headers = dict(kw.pop("headers", {}) or {})
        if roles is not None:
            headers["authorization"] = "Bearer " + issue_dev_token("tester", roles=list(roles))
        event = http_event(method, "/product-monitor" + path, headers=headers, **kw)
        response = api.handler(event, LambdaContext("product-monitor-api", timeout_s=29))
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        ctype = response["headers"].get("content-type", "")
        parsed = json.loads(body) if body and "json" in ctype else body
        return response["statusCode"], response["headers"], parsed


@pytest.fixture
def pm(sim, db, redis_url, aws) -> Iterator[Monitor]:
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=EXPORTS_BUCKET)
    ingest.reset_clients()
    telemetry._pending.clear()  # counts another test's requests left in this process's buffer
    values = {
        **simulator.local_environment(sim.url),
        **JWT,
        "PRODUCT_MONITOR_JOBS_QUEUE_URL": url,
        "PRODUCT_MONITOR_EXPORTS_BUCKET_NAME": EXPORTS_BUCKET,
        "PRODUCT_MONITOR_APIFY_SECRET_ID": None,
        "APIFY_POLL_WAIT_S": "0",
    }
    with env(**values):
        yield Monitor(sim, db, sqs, url)
    ingest.reset_clients()


@pytest.fixture
def configure():
    def apply(**values: str | None):
        ingest.reset_clients()
        return env(**values)

    return apply
