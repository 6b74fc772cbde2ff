"""The app factory: every error is problem+json, every response has a request id."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from localcloud.events import http_event
from opsdeck.api import create_app, lambda_handler
from opsdeck.errors import NotFound, RateLimited
from tests.support import LambdaContext, env

router = APIRouter(prefix="/t")


class Thing(BaseModel):
    name: str
    count: int


@router.get("/ok")
async def ok() -> dict:
    return {"ok": True}


@router.get("/things/{thing_id}")
async def get_thing(thing_id: int) -> dict:
    if thing_id == 0:
        raise NotFound(f"thing {thing_id} does not exist")
    return {"id": thing_id}


@router.post("/things")
async def create_thing(thing: Thing) -> dict:
    return thing.model_dump()


@router.get("/busy")
async def busy() -> dict:
    raise RateLimited("slow down", retry_after_s=2.4)


@router.get("/boom")
async def boom() -> dict:
    raise RuntimeError("secret internals at /srv/app.py line 3")


def call(handler, method, path, **kw):
    response = handler(http_event(method, path, **kw), LambdaContext())
    body = response.get("body", "")
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], response["headers"], json.loads(body) if body else None


@pytest.fixture(scope="module")
def handler():
    return lambda_handler(create_app(title="t", base_path="/t", routers=[router]))


def test_success_has_request_id_from_api_gateway(handler):
    event = http_event("GET", "/t/ok", request_id="abcDEF123=")
    response = handler(event, LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"ok": True}
    assert response["headers"]["x-request-id"] == "abcDEF123="


def test_callers_request_id_is_echoed_when_sane(handler):
    _, headers, _ = call(handler, "GET", "/t/ok", headers={"x-request-id": "trace-42"})
    assert headers["x-request-id"] == "trace-42"
    _, headers, _ = call(handler, "GET", "/t/ok", headers={"x-request-id": "bad id\nwith newline"})
    assert headers["x-request-id"] != "bad id\nwith newline"


def test_domain_error_is_problem_json(handler):
    status, headers, body = call(handler, "GET", "/t/things/0")
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == "https://opsdeck.dev/problems/not-found"
    assert body["detail"] == "thing 0 does not exist"
    assert body["instance"] == "/t/things/0"
    assert body["request_id"] == headers["x-request-id"]


def test_unknown_route_and_method(handler):
    status, headers, body = call(handler, "GET", "/t/nothing")
    assert (status, body["type"]) == (404, "https://opsdeck.dev/problems/not-found")
    assert headers["content-type"] == "application/problem+json"
    status, _, body = call(handler, "DELETE", "/t/ok")
    assert (status, body["type"]) == (405, "https://opsdeck.dev/problems/method-not-allowed")


def test_validation_errors_are_422_without_echoing_input(handler):
    status, _, body = call(handler, "GET", "/t/things/abc")
    assert status == 422
    assert body["type"] == "https://opsdeck.dev/problems/invalid-input"
    assert body["errors"][0]["loc"] == ["path", "thing_id"]
    status, _, body = call(handler, "POST", "/t/things", body={"name": "x", "count": "many"})
    assert status == 422 and body["errors"][0]["loc"] == ["body", "count"]
    assert "many" not in json.dumps(body)


def test_malformed_json_is_400(handler):
    status, _, body = call(
        handler, "POST", "/t/things", body='{"name": ', headers={"content-type": "application/json"}
    )
    assert (status, body["type"]) == (400, "https://opsdeck.dev/problems/bad-request")


def test_rate_limited_carries_retry_after(handler):
    status, headers, body = call(handler, "GET", "/t/busy")
    assert (status, headers["retry-after"], body["type"]) == (
        429,
        "3",
        "https://opsdeck.dev/problems/rate-limited",
    )


def test_unexpected_error_is_500_problem_without_internals(handler):
    status, headers, body = call(handler, "GET", "/t/boom")
    assert status == 500
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == "https://opsdeck.dev/problems/internal"
    assert body["request_id"] == headers["x-request-id"]
    assert "secret internals" not in json.dumps(body) and "Traceback" not in json.dumps(body)


def test_docs_and_openapi_live_under_the_base_path(handler):
    status, _, spec = call(handler, "GET", "/t/openapi.json")
    assert status == 200 and "/t/things/{thing_id}" in spec["paths"]
    response = handler(http_event("GET", "/t/docs"), LambdaContext())
    assert response["statusCode"] == 200 and "swagger" in response["body"].lower()


def test_cors_only_when_configured():
    with env(CORS_ALLOW_ORIGINS="https://admin.example.com"):
        h = lambda_handler(create_app(title="t", base_path="/t", routers=[router]))
    preflight = h(
        http_event(
            "OPTIONS",
            "/t/ok",
            headers={"origin": "https://admin.example.com", "access-control-request-method": "GET"},
        ),
        LambdaContext(),
    )
    assert preflight["statusCode"] == 200
    assert preflight["headers"]["access-control-allow-origin"] == "https://admin.example.com"
    _, headers, _ = call(h, "GET", "/t/ok", headers={"origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in headers


def test_failures_are_logged_and_successes_stay_quiet_at_info(handler):
    import io
    import logging

    from opsdeck.observability import logger

    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    previous = logger.log_level
    stdlib_logger.addHandler(capture)
    logger.setLevel("INFO")
    try:
        call(handler, "GET", "/t/ok", request_id="quiet-1")
        call(handler, "GET", "/t/things/0", request_id="loud-1")
    finally:
        logger.setLevel(previous)
        stdlib_logger.removeHandler(capture)
    access = [json.loads(line) for line in buffer.getvalue().splitlines()]
    access = [entry for entry in access if entry.get("message") == "request"]
    assert [(e["status"], e["request_id"]) for e in access] == [(404, "loud-1")]
    assert access[0]["path"] == "/t/things/0" and access[0]["level"] == "INFO"


def test_logs_and_metrics_name_the_invoking_functions_capability():
    """Several functions in one process (the local cloud): each invocation is labelled with its own."""
    import io
    import logging

    from opsdeck.observability import entry, logger, metric, metrics

    @entry("manual")
    def work(event, context):
        logger.warning("working")
        metric("Worked")
        return metrics.service

    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(capture)
    try:
        with env(POWERTOOLS_SERVICE_NAME="backoffice", POWERTOOLS_METRICS_DISABLED="true"):
            first = work({}, LambdaContext("backoffice-consumer"))
        with env(POWERTOOLS_SERVICE_NAME="marketplace", POWERTOOLS_METRICS_DISABLED="true"):
            second = work({}, LambdaContext("marketplace-orders-sync"))
    finally:
        logging.getLogger(logger.name).removeHandler(capture)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert (first, second) == ("backoffice", "marketplace")
    assert [(entry["service"], entry["function_name"]) for entry in lines] == [
        ("backoffice", "backoffice-consumer"),
        ("marketplace", "marketplace-orders-sync"),
    ]


def test_what_the_first_invocation_loaded_is_frozen_out_of_later_collections():
    import gc

    from opsdeck.observability import entry

    loaded = []

    @entry("manual")
    def work(event, context):
        loaded.append(object())  # stands in for what a first invocation loads and keeps
        return len(loaded)

    gc.unfreeze()
    try:
        assert work({}, LambdaContext("backoffice-backfill")) == 1
        frozen = gc.get_freeze_count()
        assert frozen > 0
        allocated_since = [[i] for i in range(1000)]  # tracked, alive: a second freeze would take them
        assert work({}, LambdaContext("backoffice-backfill")) == 2
        assert gc.get_freeze_count() < frozen + len(allocated_since)  # only once per container
    finally:
        gc.unfreeze()
