"""FastAPI app factory and the Mangum Lambda handler.

Every HTTP function is ``app = create_app(...)`` + ``handler = lambda_handler(app)``.
The app has:
  * routes under the capability's base path, its OpenAPI document at ``<base>/openapi.json``
    and Swagger UI at ``<base>/docs``, whose assets (``<base>/docs/{asset}``) come from the
    deployment itself (the ``fastapi-offline`` package), not a CDN: the page works offline;
  * a truthful document (``opsdeck.openapi``), built once on the first ``openapi.json`` or
    ``docs`` request and never on the request path: one ``Problem`` schema for every error,
    the errors routes declare with ``responses=problems(...)`` and dependencies with
    ``@raises(...)``, 500 everywhere, bearer security, the gateway's own 401 on catalog routes
    behind its JWT authorizer — see "Writing an HTTP API" in docs/http-api.md;
  * ``x-request-id`` on every response (the caller's, else API Gateway's request id);
  * an access-log line per request: failures (4xx/5xx) and slow requests at INFO or above,
    successes at DEBUG — every request is in API Gateway's access log already, and a JSON
    log line costs ~110 µs here, more than the whole request path;
  * every error as ``application/problem+json`` with a stable ``type`` — domain errors
    (``opsdeck.errors``), framework errors (404, 405, validation) and, last, anything
    unexpected as a 500 that names the request id and never carries a stack trace;
  * CORS when ``CORS_ALLOW_ORIGINS`` is set (on AWS, API Gateway answers CORS itself).

Middleware is pure ASGI: Starlette's ``BaseHTTPMiddleware`` costs ~100 µs a request.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import snapstart
from .errors import PROBLEM_CONTENT_TYPE, ConfigError, NotFound, OpsdeckError, status_problem
from .observability import entry, logger
from .openapi import body, problems, raises
from .settings import platform

__all__ = [
    "Direct",
    "DirectRequest",
    "ProblemResponse",
    "body",
    "create_app",
    "lambda_handler",
    "problem_response",
    "problems",
    "raises",
    "request_id",
]

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> ProblemResponse:
    return ProblemResponse(body, status_code=body["status"], headers=headers)


class RequestContext:
    """Request id, access log and the last-resort 500, as one pure ASGI middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        rid = request_id.encode()
        status = 500
        response_started = False

        async def send_with_id(message: dict) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id, "path": scope["path"]})
            if not response_started:
                body = status_problem(500, "An unexpected error occurred.", request_id=request_id)
                await _send_problem(send_with_id, body)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            level = _access_level(status, duration_ms)
            if logger.isEnabledFor(level):
                logger.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(duration_ms, 3),
                        "request_id": request_id,
                    },
                )


SLOW_REQUEST_MS = 1000.0


def _access_level(status: int, duration_ms: float) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400 or duration_ms >= SLOW_REQUEST_MS:
        return logging.INFO
    return logging.DEBUG


def _request_id(scope: dict) -> str:
    candidate = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
    return _chosen_request_id(candidate, scope.get("aws.event") or {})


def _chosen_request_id(candidate: str | None, event: dict) -> str:
    """The caller's ``x-request-id`` when it is safe to echo, else API Gateway's, else a new one."""
    if candidate is not None and _SAFE_REQUEST_ID.match(candidate):
        return candidate
    return (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())


async def _send_problem(send: Callable, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", b"%d" % len(payload)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


# --------------------------------------------------------------- error handlers


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, OpsdeckError)
    if exc.status >= 500:
        logger.warning(
            "request failed", extra={"problem": exc.slug, "detail": exc.detail, "path": request.url.path}
        )
    body = exc.to_problem(instance=request.url.path)
    body["request_id"] = request_id(request)
    return problem_response(body, exc.headers())


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    body = status_problem(exc.status_code, detail, instance=request.url.path, request_id=request_id(request))
    return problem_response(body, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        body = status_problem(400, "The request body is not valid JSON.", instance=request.url.path)
    else:
        body = status_problem(422, "The request is not valid.", instance=request.url.path, errors=errors)
    body["request_id"] = request_id(request)
    return problem_response(body)


# ---------------------------------------------------------------------- factory


#: Swagger UI's files, served from the package that ships them (``fastapi-offline``)
DOCS_ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_ASSET_CACHE = "public, max-age=86400"


def _assets_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the fastapi-offline package (Swagger UI assets) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def _asset(name: str) -> bytes:
    return (_assets_dir() / name).read_bytes()


class OpsdeckApp(FastAPI):
    """A FastAPI app whose document is ``opsdeck.openapi.finish``-ed once, on first use."""

    gateway_routes: Mapping[str, Any] | None = None
    docs_base_path: str | None = None

    def openapi(self) -> dict[str, Any]:
        if not self.openapi_schema:
            from fastapi.openapi.utils import get_openapi

            from .openapi import finish

            document = get_openapi(
                title=self.title,
                version=self.version,
                openapi_version=self.openapi_version,
                description=self.description,
                routes=self.routes,
                tags=self.openapi_tags,
                servers=self.servers,
            )
            self.openapi_schema = finish(document, self.routes, self.gateway_routes, docs=self.docs_base_path)
        return self.openapi_schema


def _add_docs_routes(app: OpsdeckApp, base_path: str, document: Callable[[], dict[str, Any]] | None) -> None:
    """``<base>/openapi.json``, ``<base>/docs``, ``<base>/docs/{asset}`` as plain Starlette routes: a
    FastAPI route costs ~5 ms of cold start to build; ``opsdeck.openapi.docs_paths`` documents them."""
    get_document = document or app.openapi

    async def openapi_document(request: Request) -> JSONResponse:
        return JSONResponse(get_document())

    async def swagger_ui(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        # relative URLs: the page is ``<base>/docs``, so they resolve under ``<base>/`` whatever
        # prefix (a stage, a custom domain's path) sits in front of the API
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="docs/swagger-ui-bundle.js",
            swagger_css_url="docs/swagger-ui.css",
            swagger_favicon_url="docs/favicon.png",
        )

    async def docs_asset(request: Request) -> Response:
        name = request.path_params["asset"]
        if name not in DOCS_ASSETS:
            raise NotFound(f"no docs asset {name[:64]!r}")
        return Response(_asset(name), media_type=DOCS_ASSETS[name], headers={"cache-control": _ASSET_CACHE})

    app.add_route(f"{base_path}/openapi.json", openapi_document, methods=["GET"], include_in_schema=False)
    app.add_route(f"{base_path}/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_route(f"{base_path}/docs/{{asset}}", docs_asset, methods=["GET"], include_in_schema=False)


def create_app(
    *,
    title: str,
    base_path: str,
    routers: Sequence[APIRouter] = (),
    version: str = "1.0.0",
    description: str = "",
    document: Callable[[], dict[str, Any]] | None = None,
    gateway_routes: Mapping[str, Any] | None = None,
) -> FastAPI:
    """A FastAPI app whose routes, docs and OpenAPI live under ``base_path``.

    ``document`` replaces what ``<base>/openapi.json`` serves (the ops API serves the combined
    document of every capability); ``gateway_routes`` (route key → catalog ``Route``) overrides
    the catalog lookup that tells which routes sit behind API Gateway's JWT authorizer.
    """
    app = OpsdeckApp(
        title=title,
        version=version,
        description=description,
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.gateway_routes = gateway_routes
    app.docs_base_path = base_path
    for router in routers:
        app.include_router(router)
    _add_docs_routes(app, base_path, document)
    app.add_exception_handler(OpsdeckError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    origins = [o.strip() for o in platform().cors_allow_origins.split(",") if o.strip()]
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["authorization", "content-type", "if-none-match", "x-request-id"],
            expose_headers=["etag", "x-request-id", "retry-after"],
            max_age=600,
        )
    app.add_middleware(RequestContext)
    snapstart.before_snapshot(app.openapi)  # SnapStart: the document is built into the snapshot
    return app


# ------------------------------------------------------------------ direct routes


@dataclass(frozen=True, slots=True)
class DirectRequest:
    """What a direct route sees of an API Gateway v2 event (headers lower-cased)."""

    event: dict[str, Any]
    method: str
    #: the path as the app routes it (trailing slashes stripped, as ``TrailingSlash`` does)
    path: str
    headers: dict[str, str]
    match: re.Match[str]
    body: str


@dataclass(frozen=True, slots=True)
class Direct:
    """A hot route answered without Mangum, Starlette and FastAPI — for the requests it accepts.

    ``accept(request)`` decides, without side effects, whether it understands the request *exactly*
    as the app's route would (same validation outcome): it returns the work to do (a callable
    answering a ``Response``, or raising ``OpsdeckError``) or ``None``, and then the app answers as
    always. The layer gives direct answers what ``RequestContext`` and the error handlers give the
    app's: the request id (header and problem body), the access-log line, problem+json for domain
    errors and the last-resort 500. The app's route stays: it documents the operation and answers
    everything ``accept`` passes on (invalid input, other content types, CORS requests, ...).
    ``path`` is matched in full against the event's path with trailing slashes stripped.
    """

    method: str
    path: re.Pattern[str]
    accept: Callable[[DirectRequest], Callable[[], Response] | None]


def _direct(routes: Sequence[Direct], event: dict) -> dict | None:
    """The answer of a direct route, in Mangum's payload 2.0 shape; ``None``: the app answers."""
    if event.get("version") != "2.0" or event.get("isBase64Encoded") or event.get("cookies"):
        return None
    http = (event.get("requestContext") or {}).get("http") or {}
    method, raw_path = http.get("method"), http.get("path") or "/"
    path = raw_path.rstrip("/") or "/"
    for route in routes:
        match = route.path.fullmatch(path) if route.method == method else None
        if match is not None:
            break
    else:
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if "origin" in headers:  # CORS: the app's middleware decides
        return None
    request = DirectRequest(event, method, path, headers, match, event.get("body") or "")
    work = route.accept(request)
    if work is None:
        return None
    started = time.perf_counter()
    request_id = _chosen_request_id(headers.get("x-request-id"), event)
    try:
        response = work()
    except OpsdeckError as exc:
        if exc.status >= 500:
            logger.warning("request failed", extra={"problem": exc.slug, "detail": exc.detail, "path": path})
        problem = exc.to_problem(instance=path)
        problem["request_id"] = request_id
        response = problem_response(problem, exc.headers())
    except Exception:
        logger.exception("unhandled error", extra={"request_id": request_id, "path": path})
        problem = status_problem(500, "An unexpected error occurred.", request_id=request_id)
        payload = json.dumps(problem).encode()
        response = Response(payload, status_code=500, media_type=PROBLEM_CONTENT_TYPE)
    headers_out = {k.decode("latin-1"): v.decode("latin-1") for k, v in response.raw_headers}
    headers_out["x-request-id"] = request_id
    duration_ms = (time.perf_counter() - started) * 1000
    level = _access_level(response.status_code, duration_ms)
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "request",
            extra={
                "method": method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 3),
                "request_id": request_id,
            },
        )
    return {
        "statusCode": response.status_code,
        "body": response.body.decode(),
        "headers": headers_out,
        "isBase64Encoded": False,
    }


def lambda_handler(
    app: FastAPI, *, text_mime_types: Iterable[str] = (), direct: Sequence[Direct] = ()
) -> Callable[[dict, Any], dict]:
    """The Lambda entry point for ``app``: API Gateway HTTP API (payload 2.0) via Mangum.

    ``direct`` routes answer the requests they accept without the ASGI stack (``Direct``); the
    handler's ``via_app`` attribute is the same entry point without them (tests compare the two).
    """
    from mangum import Mangum
    from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

    mangum = Mangum(
        app,
        lifespan="off",
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_CONTENT_TYPE, *text_mime_types],
    )
    routes = tuple(direct)

    @entry("http")
    def handler(event: dict, context: Any) -> dict:
        if routes:
            answer = _direct(routes, event)
            if answer is not None:
                return answer
        return mangum(event, context)

    @entry("http")
    def via_app(event: dict, context: Any) -> dict:
        return mangum(event, context)

    handler.via_app = via_app  # type: ignore[attr-defined]
    return handler
