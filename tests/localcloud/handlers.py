"""Lambda handlers of the test catalog (``tests/localcloud/catalog.py``).

Real handlers in the house style (``observability.entry``, ``opsdeck.api``, Mangum), whose
behaviour the tests steer through what they send: a queue message ``{"fail": true}`` is
reported in ``batchItemFailures``, ``{"crash": true}`` raises (whole-batch failure),
``{"respond": X}`` makes the handler return ``X`` verbatim. Every call is recorded in
``CALLS`` (the event and a copy of the environment the function saw).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from opsdeck import aws
from opsdeck.api import create_app, lambda_handler
from opsdeck.observability import entry, logger

CALLS: list[dict[str, Any]] = []
#: messages with ``{"flaky": true}`` fail while this is set (then a DLQ replay succeeds)
FLAKY = {"failing": True}
ENV_KEYS = (
    "STAGE",
    "OPSDECK_FUNCTION",
    "POWERTOOLS_SERVICE_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "OPS_TEST_JOBS_QUEUE_URL",
    "OPS_TEST_TICK_RULE_NAME",
    "OPS_TEST_WORKER_FUNCTION_NAME",
    "AWS_ENDPOINT_URL",
    "TEST_FLAVOUR",
)


def _record(kind: str, event: Any, context: Any) -> None:
    CALLS.append(
        {
            "kind": kind,
            "event": event,
            "function": context.function_name,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory_mb": context.memory_limit_in_mb,
            "env": {k: os.environ.get(k) for k in ENV_KEYS},
        }
    )


def calls(kind: str | None = None, function: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in CALLS
        if (kind is None or c["kind"] == kind) and (function is None or c["function"] == function)
    ]


# ------------------------------------------------------------------------ queue


@entry("queue")
def worker(event: dict[str, Any], context: Any) -> Any:
    _record("queue", event, context)
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"]) if record["body"].startswith("{") else {}
        if body.get("crash"):
            raise RuntimeError("worker crashed on purpose")
        if "respond" in body:
            return body["respond"]
        if body.get("sleep"):
            time.sleep(body["sleep"])
        if body.get("fail") or (body.get("flaky") and FLAKY["failing"]):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


# --------------------------------------------------------------------- schedule


@entry("schedule")
def tick(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record("schedule", event, context)
    if event.get("detail", {}).get("crash"):
        raise ValueError("scheduled job failed")
    logger.warning("ticked", extra={"detail": event.get("detail")})  # tests run at WARNING
    return {"ticked": event["time"]}


@entry("manual")
def toggler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Disables/enables the tick rule through the EventBridge API, as platform_sync does."""
    _record("manual", event, context)
    rule = os.environ["OPS_TEST_TICK_RULE_NAME"]
    events = aws.client("events")
    if event.get("enable"):
        events.enable_rule(Name=rule)
    else:
        events.disable_rule(Name=rule)
    return {"rule": rule, "enabled": bool(event.get("enable"))}


@entry("manual")
def caller(event: dict[str, Any], context: Any) -> Any:
    """Invokes another function through the Lambda API (catalog ``invokes``)."""
    _record("manual", event, context)
    response = aws.client("lambda").invoke(
        FunctionName=os.environ["OPS_TEST_WORKER_FUNCTION_NAME"],
        InvocationType=event.get("type", "RequestResponse"),
        Payload=json.dumps({"Records": []}).encode(),
    )
    payload = response["Payload"].read()
    return {"status": response["StatusCode"], "payload": json.loads(payload) if payload else None}


@entry("manual")
def storage(event: dict[str, Any], context: Any) -> Any:
    """Presigned URLs for its catalog bucket (``Function.buckets``)."""
    from opsdeck import storage as s3

    _record("manual", event, context)
    if event["action"] == "upload":
        return s3.presigned_upload("ops-test-files", event["key"], content_type="image/png", max_bytes=1024)
    if event["action"] == "put":
        s3.put_object("ops-test-files", event["key"], event["body"].encode(), content_type="text/csv")
        return {"put": event["key"]}
    return {"url": s3.presigned_download("ops-test-files", event["key"], filename=event.get("filename"))}


@entry("deploy")
def deployer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record("deploy", event, context)
    return {"PhysicalResourceId": "test"}


# ------------------------------------------------------------------------- HTTP

router = APIRouter(prefix="/ops/test")


@router.get("/echo/{item}")
async def echo(item: str, request: Request) -> dict[str, Any]:
    event = request.scope["aws.event"]
    _record("http", event, request.scope["aws.context"])
    return {
        "item": item,
        "query": dict(request.query_params),
        "cookies": dict(request.cookies),
        "route": event["routeKey"],
        "claims": (event["requestContext"].get("authorizer") or {}).get("jwt", {}).get("claims"),
        "queue_url": os.environ.get("OPS_TEST_JOBS_QUEUE_URL"),
    }


@router.post("/echo/{item}")
async def echo_body(item: str, request: Request) -> dict[str, Any]:
    event = request.scope["aws.event"]
    data = await request.body()
    return {
        "item": item,
        "length": len(data),
        "base64": event["isBase64Encoded"],
        "text": data[:64].decode("latin-1"),
    }


@router.get("/private")
async def private(request: Request) -> dict[str, Any]:
    return {"claims": request.scope["aws.event"]["requestContext"]["authorizer"]["jwt"]["claims"]}


@router.get("/scoped")
async def scoped(request: Request) -> dict[str, Any]:
    return {"scopes": request.scope["aws.event"]["requestContext"]["authorizer"]["jwt"]["scopes"]}


@router.get("/cookies")
async def cookies() -> Response:
    response = JSONResponse({"ok": True})
    response.set_cookie("session", "abc", httponly=True)
    response.set_cookie("theme", "dark")
    return response


@router.get("/binary")
async def binary() -> Response:
    return Response(bytes(range(256)), media_type="application/octet-stream")


@router.post("/enqueue")
async def enqueue(request: Request) -> dict[str, Any]:
    sent = aws.send_messages("ops-test-jobs", [await request.json()])
    return {"sent": sent}


app = create_app(title="localcloud test", base_path="/ops/test", routers=[router])
api = lambda_handler(app)


GATE = {"entered": threading.Event(), "release": threading.Event()}


@entry("http")
def gated(event: dict[str, Any], context: Any) -> Any:
    """Holds its (only) concurrency slot until the test releases it."""
    GATE["entered"].set()
    GATE["release"].wait(10)
    return {"statusCode": 200, "body": "done"}


@entry("http")
def raw(event: dict[str, Any], context: Any) -> Any:
    """An HTTP function without a framework: what API Gateway does with odd responses."""
    _record("http", event, context)
    path = event["rawPath"]
    if path.endswith("/crash"):
        raise RuntimeError("handler crashed on purpose")
    if path.endswith("/plain"):
        return {"hello": "world"}
    if path.endswith("/malformed"):
        return {"statusCode": "teapot"}
    if path.endswith("/slow"):
        time.sleep(1.2)
        return {"statusCode": 200, "body": "late"}
    return {"statusCode": 204}
