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


def test_concurrent_invocations_of_different_functions_keep_their_own_labels_and_metrics(capsys):
    """The local cloud runs invocations of different functions at once in one process: every log
    line and every metric stays with the invocation that made it (Powertools' keys and metric set
    are process-wide), and no "dimension already added" warning appears."""
    import io
    import logging
    import threading
    import warnings

    from localcloud.runtime import function_environment
    from opsdeck.observability import entry, logger, metric

    both_inside = threading.Barrier(2, timeout=10)

    @entry("http")
    def work(event, context):
        both_inside.wait()  # both invocations have started: their context keys are both set
        logger.warning("working")
        metric("Worked" + context.function_name.split("-")[0].title())
        both_inside.wait()  # both added their metric before either flushes
        return "ok"

    functions = {"backoffice-api": "backoffice", "marketplace-api": "marketplace"}
    results: dict[str, object] = {}

    def invoke(function: str) -> None:
        with function_environment(
            {"POWERTOOLS_SERVICE_NAME": functions[function], "OPSDECK_FUNCTION": function}
        ):
            event = {"requestContext": {"requestId": f"req-{function}"}}
            try:
                results[function] = work(event, LambdaContext(function))
            except BaseException as error:  # reported below
                results[function] = error

    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(capture)
    capsys.readouterr()
    try:
        with env(POWERTOOLS_METRICS_DISABLED="false"), warnings.catch_warnings():
            warnings.simplefilter("error")  # a duplicate dimension would raise in its thread
            threads = [threading.Thread(target=invoke, args=(f,)) for f in functions]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
    finally:
        logging.getLogger(logger.name).removeHandler(capture)
    assert results == {f: "ok" for f in functions}
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    labels = sorted((e["function_name"], e["service"], e["correlation_id"]) for e in lines)
    assert labels == [
        ("backoffice-api", "backoffice", "req-backoffice-api"),
        ("marketplace-api", "marketplace", "req-marketplace-api"),
    ]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    flushed = sorted(
        (
            blob["function"],
            blob["service"],
            tuple(m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]),
        )
        for blob in emitted
    )
    assert flushed == [
        ("backoffice-api", "backoffice", ("WorkedBackoffice",)),
        ("marketplace-api", "marketplace", ("WorkedMarketplace",)),
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


# ------------------------------------------------------------ the OpenAPI document


def _doc_app(**kw):
    from functions.catalog import Route
    from opsdeck.api import problems
    from opsdeck.errors import Conflict, Unavailable

    r = APIRouter(prefix="/d")

    @r.get("/things/{thing_id}", responses=problems(NotFound, 409))
    async def read(thing_id: int) -> dict:
        return {"id": thing_id}

    @r.post("/things", responses=problems(Conflict, Unavailable))
    async def write(thing: Thing) -> dict:
        return thing.model_dump()

    @r.post("/sync")
    async def sync() -> dict:
        return {}

    gateway = {"POST /d/sync": Route("POST", "/d/sync", authorizer="jwt")}
    return create_app(title="d", base_path="/d", routers=[r], gateway_routes=gateway, **kw)


def test_document_is_built_lazily_not_on_the_request_path():
    app = _doc_app()
    h = lambda_handler(app)
    assert call(h, "GET", "/d/things/1")[0] == 200
    assert app.openapi_schema is None  # a request never builds the document
    status, _, spec = call(h, "GET", "/d/openapi.json")
    assert status == 200 and app.openapi_schema == spec
    assert app.openapi() is app.openapi_schema  # built once


def test_every_error_is_the_one_problem_schema_as_problem_json():
    spec = _doc_app().openapi()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["Problem"]["properties"]) == {
        "type", "title", "status", "detail", "instance", "request_id", "errors"
    }  # fmt: skip
    read = spec["paths"]["/d/things/{thing_id}"]["get"]["responses"]
    write = spec["paths"]["/d/things"]["post"]["responses"]
    assert set(read) == {"200", "404", "409", "422", "500"}
    assert set(write) == {"200", "400", "409", "422", "500", "503"}  # 400: a malformed JSON body
    for responses in (read, write):
        for status, response in responses.items():
            if status >= "400":
                assert list(response["content"]) == ["application/problem+json"], status
                media = response["content"]["application/problem+json"]
                assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
                for example in media["examples"].values():
                    assert example["value"]["status"] == int(status)
    examples = {s: write[s]["content"]["application/problem+json"]["examples"] for s in write if s >= "400"}
    assert examples["503"]["unavailable"]["value"]["type"] == "https://opsdeck.dev/problems/unavailable"
    assert "errors" in examples["422"]["invalid-input"]["value"]


def test_documented_problems_match_what_the_handler_answers():
    h = lambda_handler(_doc_app())
    status, headers, body = call(h, "POST", "/d/things", body={"name": 1})
    assert (status, headers["content-type"]) == (422, "application/problem+json")
    assert set(body) <= set(_doc_app().openapi()["components"]["schemas"]["Problem"]["properties"])


def test_gateway_authorizer_routes_document_the_gateways_own_401():
    spec = _doc_app().openapi()
    sync = spec["paths"]["/d/sync"]["post"]
    assert sync["security"] == [{"gatewayJwt": []}]
    unauthorized = sync["responses"]["401"]["content"]["application/json"]
    assert unauthorized["example"] == {"message": "Unauthorized"}
    assert unauthorized["schema"] == {"$ref": "#/components/schemas/GatewayMessage"}
    assert spec["components"]["securitySchemes"]["gatewayJwt"]["scheme"] == "bearer"
    # routes the function authenticates itself do not claim the gateway's answer
    assert "security" not in spec["paths"]["/d/things"]["post"]


def test_docs_page_and_its_assets_come_from_the_deployment():
    h = lambda_handler(_doc_app())
    response = h(http_event("GET", "/d/docs"), LambdaContext())
    page = response["body"]
    assert response["statusCode"] == 200
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    # relative to the page (/d/docs): /d/docs/<asset> and /d/openapi.json, whatever prefix is in front
    assert '<script src="docs/swagger-ui-bundle.js">' in page
    assert 'href="docs/swagger-ui.css"' in page and 'href="docs/favicon.png"' in page
    assert "url: 'openapi.json'" in page
    texts = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css"}
    for asset, media_type in texts.items():
        r = h(http_event("GET", f"/d/docs/{asset}"), LambdaContext())
        assert r["statusCode"] == 200 and r["headers"]["content-type"].startswith(media_type)
        assert len(r["body"]) > 10_000
    png = h(http_event("GET", "/d/docs/favicon.png"), LambdaContext())
    assert png["isBase64Encoded"] and base64.b64decode(png["body"])[:4] == b"\x89PNG"
    status, headers, _ = call(h, "GET", "/d/docs/secrets.txt")
    assert (status, headers["content-type"]) == (404, "application/problem+json")
