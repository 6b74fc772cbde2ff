"""The ops console's routes on ``ops-api``: the page and the ``/ops/…`` API behind it.

* ``GET /ops/console`` and ``GET /ops/console/{asset}``: the page (static HTML/CSS/JS shipped in
  ``functions/ops/static``, no build step, nothing from the internet) under a strict
  Content-Security-Policy. The shell holds no data, so it is public: a browser navigation
  cannot carry a bearer token; every data route below needs one.
* Read routes need a JWT with role ``ops-viewer`` or ``ops-admin``; actions need ``ops-admin``,
  are POSTs, must carry ``X-Opsdeck-Console: 1`` (a header a cross-site form cannot send and a
  cross-site ``fetch`` cannot send without a CORS preflight, which the API never grants) and,
  when the browser says where they come from, ``Sec-Fetch-Site: same-origin`` and an ``Origin``
  equal to the API's own host. Each action is written to ``ops.audit`` before it runs
  (``functions.ops.audit``).
* Data comes from ``functions.ops.backend.backend()``: the local cloud in process, or AWS.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from functions.ops import audit, models, replays
from functions.ops.backend import NotAvailable, backend
from opsdeck.api import problems, raises, request_id
from opsdeck.auth import Principal, require_roles
from opsdeck.errors import Conflict, Forbidden, NotFound, OpsdeckError, Unavailable, UpstreamError
from opsdeck.replay import ReplayError, ReplayFailed

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
VIEWER, ADMIN = "ops-viewer", "ops-admin"
CONSOLE_HEADER = "x-opsdeck-console"
#: the page's policy: only this origin's own script and style, no inline anything, no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}

QueueName = Annotated[
    str, PathParam(pattern=r"^[a-z0-9][a-z0-9.\-]{0,79}$", examples=["backoffice-changes-dlq"])
]
ScheduleName = Annotated[
    str, PathParam(pattern=r"^[a-z0-9][a-z0-9\-]{1,63}$", examples=["marketplace-orders-schedule"])
]
RequestId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9\-]{1,64}$", examples=[models.EXAMPLE_REQUEST_ID])]
ReplayId = Annotated[uuid.UUID, PathParam(examples=[models.EXAMPLE_REPLAY_ID])]
FunctionName = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9\-]{1,62}$")]
Trigger = Literal["http", "schedule", "queue", "deploy", "invoke"]
Outcome = Literal["ok", "partial", "error", "timeout", "invalid-response", "throttled"]

router = APIRouter(prefix="/ops", tags=["console"])


viewer = require_roles(VIEWER, ADMIN, any_of=True)
admin = require_roles(ADMIN)


def _page_file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


_cache: dict[str, bytes] = {}


def asset(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = _page_file(name)
    return _cache[name]


# ------------------------------------------------------------------- the page


@router.get(
    "/console",
    summary="The ops console (HTML)",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {"example": "<!doctype html>…"}}}},
)
async def console_page() -> Response:
    return Response(asset("index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get(
    "/console/{name}",
    summary="The console's script, style and icon",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/javascript": {"schema": {"type": "string"}, "example": '"use strict";'},
                "text/css": {"schema": {"type": "string"}, "example": ":root { --fg: #1d2330; }"},
                "image/svg+xml": {"schema": {"type": "string"}, "example": "<svg xmlns=…></svg>"},
            }
        },
        **problems(NotFound),
    },
)
async def console_asset(
    name: Annotated[str, PathParam(pattern=r"^[a-z]+\.(js|css|svg)$", examples=["console.js"])],
) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response(asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


# ----------------------------------------------------------- cross-site checks


class CrossSiteRequest(Forbidden):
    slug, title = "cross-site-request", "Cross-site request refused"


ConsoleHeader = Annotated[
    Literal["1"],
    Header(
        alias=CONSOLE_HEADER,
        description="sent by the console page; a cross-site form cannot send it, a cross-site fetch "
        "cannot without a CORS preflight (never granted)",
        examples=["1"],
    ),
]


@raises(CrossSiteRequest)
def same_origin(request: Request, _console: ConsoleHeader) -> None:
    """Mutating requests come from the console page itself, never from another site: the header
    (checked by FastAPI: missing or not ``1`` is a 422), and what the browser says of the origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise CrossSiteRequest(f"Sec-Fetch-Site {site!r}: actions are accepted from the console's own origin")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CrossSiteRequest("the request's Origin is not this API's host")


async def _run(fn, *args: Any, **kwargs: Any) -> Any:
    """Backends do blocking I/O (boto3, the local engine): off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _act(
    request: Request,
    principal: Principal,
    action: str,
    target: str,
    params: dict,
    fn,
    *args,
    with_audit_id: bool = False,
):
    """Audit, then run the action (given the audit id when ``with_audit_id``), then record its outcome."""
    client = request.scope.get("aws.event", {}).get("requestContext", {}).get("http", {}).get("sourceIp")
    audit_id = await _run(
        audit.begin, principal, action, target, params, request_id=request_id(request), source_ip=client
    )
    try:
        result = await _run(fn, *args, audit_id) if with_audit_id else await _run(fn, *args)
    except OpsdeckError as exc:
        await _run(audit.finish, audit_id, exc.slug, {"detail": exc.detail})
        raise
    except Exception:
        await _run(audit.finish, audit_id, "internal", None)
        raise
    await _run(audit.finish, audit_id, "ok", result)
    return (
        {**result, "audit_id": audit_id}
        if isinstance(result, dict)
        else {"result": result, "audit_id": audit_id}
    )


Viewer = Annotated[Principal, Depends(viewer)]
Admin = Annotated[Principal, Depends(admin)]
Guarded = [Depends(same_origin)]


# ----------------------------------------------------------------- read routes


@router.get(
    "/whoami", summary="The caller, its roles and what the console may do", response_model=models.Whoami
)
async def whoami(principal: Viewer) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "roles": sorted(principal.roles),
        "can_act": ADMIN in principal.roles,
        "mode": backend().mode,
    }


@router.get(
    "/overview",
    summary="Every capability and function with its trigger and last hour's numbers",
    response_model=models.Overview,
    responses=problems(UpstreamError),
)
async def overview(principal: Viewer) -> dict[str, Any]:
    from functions import catalog
    from functions.ops.api import describe, health_checks

    window = 3600
    b = backend()
    stats, checks = await asyncio.gather(_run(b.function_stats, window), _run(health_checks))
    names = {f.name for f in getattr(getattr(b, "cloud", None), "catalog", catalog.FUNCTIONS)}
    capabilities: dict[str, list[dict[str, Any]]] = {}
    for f in getattr(getattr(b, "cloud", None), "catalog", catalog.FUNCTIONS):
        if f.name in names:
            item = describe(f)
            item["last_hour"] = stats.get(f.name, {"invocations": 0, "errors": 0, "p95_ms": None})
            capabilities.setdefault(f.capability, []).append(item)
    return {
        "mode": b.mode,
        "window_s": window,
        "capabilities": [{"name": k, "functions": v} for k, v in capabilities.items()],
        "health": checks,
    }


@router.get(
    "/queues",
    summary="Every queue and DLQ: visible, in flight, oldest message age",
    response_model=models.Queues,
    responses=problems(UpstreamError),
)
async def queues(principal: Viewer) -> dict[str, Any]:
    return {"queues": await _run(backend().queues)}


@router.get(
    "/queues/{queue}/messages",
    summary="Messages of a queue, with receive count and failure reason",
    response_model=models.Messages,
    responses=problems(NotFound, UpstreamError),
)
async def messages(
    queue: QueueName, principal: Viewer, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    return {"queue": queue, "messages": await _run(backend().peek, queue, limit)}


@router.get(
    "/schedules",
    summary="Every rule: expression, state, last and next fire",
    response_model=models.Schedules,
    responses=problems(UpstreamError),
)
async def schedules(principal: Viewer) -> dict[str, Any]:
    return {"schedules": await _run(backend().schedules)}


@router.get(
    "/invocations",
    summary="The invocation journal, newest first (local cloud)",
    response_model=models.Invocations,
    responses=problems(NotAvailable),
)
async def invocations(
    principal: Viewer,
    function: FunctionName = None,
    trigger: Trigger | None = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    hide_console: Annotated[bool, Query(description="leave out the console's own reads")] = False,
) -> dict[str, Any]:
    found = await _run(
        backend().invocations,
        function=function,
        trigger=trigger,
        outcome=outcome,
        limit=limit,
        hide_console=hide_console,
    )
    return {"invocations": found}


@router.get(
    "/invocations/{request_id}",
    summary="One invocation: event, result and log lines",
    response_model=models.InvocationDetail,
    responses=problems(NotFound, UpstreamError),
)
async def invocation(
    request_id: RequestId, principal: Viewer, function: FunctionName = None
) -> dict[str, Any]:
    return await _run(backend().invocation, request_id, function)


@router.get(
    "/series",
    summary="Per-minute invocations and errors per function; queue depth over time",
    response_model=models.Series,
    responses=problems(UpstreamError),
)
async def series(principal: Viewer, minutes: Annotated[int, Query(ge=5, le=360)] = 60) -> dict[str, Any]:
    return await _run(backend().series, minutes)


@router.get(
    "/audit",
    summary="The console's actions, newest first",
    response_model=models.AuditLog,
    responses=problems(Unavailable),
)
async def audit_log(principal: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    return {"actions": await _run(audit.recent, limit)}


@router.get(
    "/replays/{replay_id}",
    summary="A replay's progress: counts and moved ids as it goes, then its outcome",
    response_model=models.ReplayProgress,
    responses=problems(NotFound, Unavailable),
)
async def replay_progress(replay_id: ReplayId, principal: Viewer) -> dict[str, Any]:
    return await _run(replays.get, str(replay_id))


# -------------------------------------------------------------------- actions

#: API Gateway answers 504 after 30 s whatever the function does; the replay stops this much
#: earlier than the invocation's own end to release what it holds, store its outcome and answer
REPLAY_MARGIN_S, GATEWAY_LIMIT_S = 3.0, 29.0


def _time_budget(request: Request) -> float | None:
    """What is left of this invocation for the replay (Lambda's context, also in the local cloud)."""
    context = request.scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(1.0, min(remaining() / 1000, GATEWAY_LIMIT_S) - REPLAY_MARGIN_S)


class ReplayRequest(BaseModel):
    """The options of ``opsdeck queues replay``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filter": "kind == `payment`",
                    "limit": 10,
                    "dry_run": True,
                    "rate": "50/s",
                    "replay_id": "0d5e3f5c-8d3b-4f7e-9a57-3a3f4f0e6c21",
                }
            ]
        },
    )

    to: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9.\-]{0,79}$")] = None
    #: a JMESPath expression over each message's JSON body (``format: jmespath``: one that does
    #: not compile is refused with 422 before anything is received)
    filter: Annotated[
        str | None, Field(min_length=1, max_length=1000, json_schema_extra={"format": "jmespath"})
    ] = None
    limit: Annotated[int | None, Field(ge=1, le=100_000)] = None
    dry_run: bool = False
    rate: Annotated[str | None, Field(pattern=r"^[0-9]{1,4}(\.[0-9]+)?(/s)?$")] = None
    replay_id: uuid.UUID | None = Field(
        None,
        description="chosen by the caller (a new UUID per replay) to follow it with "
        "GET /ops/replays/{replay_id} while this request runs; one is chosen if absent. A used id is a 409",
    )


@router.post(
    "/queues/{queue}/replay",
    summary="Replay a DLQ (filter, dry run, limit, rate)",
    dependencies=Guarded,
    response_model=models.Replayed,
    responses=problems(NotFound, Conflict, ReplayError, ReplayFailed, Unavailable),
)
async def replay(
    queue: QueueName, request: Request, principal: Admin, options: Annotated[ReplayRequest, Body()] = None
) -> dict[str, Any]:
    options = options or ReplayRequest()
    replay_id = str(options.replay_id or uuid.uuid4())
    params = options.model_dump(exclude={"replay_id"})
    budget = _time_budget(request)

    def run(audit_id: int) -> dict[str, Any]:
        replays.start(replay_id, audit_id, queue, params)  # a used replay id: Conflict, nothing run
        recorder = replays.Recorder(replay_id)
        try:
            result = backend().replay(queue, progress=recorder, time_budget_s=budget, **params)
        except OpsdeckError as exc:
            replays.finish(replay_id, exc.slug, {"detail": exc.detail}, recorder.last)
            raise
        except Exception:
            replays.finish(replay_id, "internal", {"detail": "internal error"}, recorder.last)
            raise
        result = {**result, "replay_id": replay_id}
        replays.finish(replay_id, "ok", result, recorder.last)
        return result

    return await _act(
        request, principal, "replay", queue, {**params, "replay_id": replay_id}, run, with_audit_id=True
    )


@router.post(
    "/schedules/{schedule}/fire",
    summary="Fire a schedule now (asynchronously, as EventBridge invokes)",
    status_code=202,
    dependencies=Guarded,
    response_model=models.Fired,
    responses=problems(NotFound, UpstreamError, Unavailable),
)
async def fire(schedule: ScheduleName, request: Request, principal: Admin) -> dict[str, Any]:
    return await _act(request, principal, "fire", schedule, {}, backend().fire, schedule)


@router.post(
    "/schedules/{schedule}/enable",
    summary="Enable a schedule's rule",
    dependencies=Guarded,
    response_model=models.ScheduleChanged,
    responses=problems(NotFound, UpstreamError, Unavailable),
)
async def enable(schedule: ScheduleName, request: Request, principal: Admin) -> dict[str, Any]:
    return await _act(request, principal, "enable", schedule, {}, backend().set_enabled, schedule, True)


@router.post(
    "/schedules/{schedule}/disable",
    summary="Disable a schedule's rule",
    dependencies=Guarded,
    response_model=models.ScheduleChanged,
    responses=problems(NotFound, UpstreamError, Unavailable),
)
async def disable(schedule: ScheduleName, request: Request, principal: Admin) -> dict[str, Any]:
    return await _act(request, principal, "disable", schedule, {}, backend().set_enabled, schedule, False)


@router.post(
    "/invocations/{request_id}/reinvoke",
    summary="Invoke again with the same event (local cloud)",
    dependencies=Guarded,
    response_model=models.Reinvoked,
    responses=problems(NotFound, Conflict, NotAvailable, Unavailable),
)
async def reinvoke(request_id: RequestId, request: Request, principal: Admin) -> dict[str, Any]:
    return await _act(request, principal, "reinvoke", request_id, {}, backend().reinvoke, request_id)
