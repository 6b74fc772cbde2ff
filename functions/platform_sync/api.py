"""``platform-sync-api``: the seed's controller API under ``/platform-sync/api/v1``.

Platforms       POST|GET /platforms, GET /platforms/active, GET|PUT|DELETE /platforms/{id}
Run now         POST /run/{task_type}[?platform_id=]                → 202 with the job ids
Scheduler       GET /scheduler; POST /scheduler/{start|pause|resume|stop};
                POST /scheduler/{task_type}/{start|pause|resume|stop}
Config          GET|POST /scheduler/config, GET|PUT /scheduler/config/{task_type}
Jobs            GET /jobs (filters, cursor pages), GET /jobs/{job_id} with every attempt

Every route needs a JWT (API Gateway's authorizer, or a bearer token the function verifies):
role ``platform-viewer`` (or ``platform-operator``) reads, ``platform-operator`` writes.
The repository (SQLAlchemy) and the control module (boto3) load on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query

from opsdeck import cursor as cursor_codec
from opsdeck.api import create_app, lambda_handler, problems
from opsdeck.auth import Principal, authorize, require_roles
from opsdeck.errors import Conflict, InvalidInput, NotFound, Unavailable
from opsdeck.lazy import lazy_import
from opsdeck.outbound import OutboundRefused
from opsdeck.params import Cursor as OpaqueCursor
from opsdeck.params import Timestamp

from . import schemas as s
from .domain import OPERATOR_ROLE, TASK_TYPES, VIEWER_ROLE, TaskType, next_run, rule_should_be_enabled
from .validation import check_platform

repository = lazy_import("functions.platform_sync.repository")
control = lazy_import("functions.platform_sync.control")
jobs = lazy_import("functions.platform_sync.jobs")

BASE = "/platform-sync/api/v1"
router = APIRouter(prefix=BASE, tags=["platform_sync"])
read = require_roles(VIEWER_ROLE, OPERATOR_ROLE, any_of=True)
write = require_roles(OPERATOR_ROLE)
Reader = Annotated[Principal, Depends(read)]
Writer = Annotated[Principal, Depends(write)]
PlatformId = Annotated[int, Path(ge=1, le=2**62, description="platform id", examples=[1])]
DeletedId = Annotated[int, Path(ge=1, le=2**62, description="platform id", examples=[2])]
TaskTypePath = Annotated[TaskType, Path(description="sync or valid", examples=["sync"])]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[OpaqueCursor | None, Query(description="next_cursor of the previous page")]

AUTH: dict[int | str, dict[str, Any]] = {}  # 401/403 come from require_roles, documented by the factory
R404 = problems(NotFound)
R409 = problems(Conflict)
R422 = problems(InvalidInput, OutboundRefused)
R503 = problems(Unavailable)


def _platform(row: Any) -> dict[str, Any]:
    return s.row_dict(row, s.PlatformOut)


def _page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    page = rows[:limit]
    return page, cursor_codec.encode("platforms", page[-1].id) if len(rows) > limit else None


def _after(cursor: str | None) -> int | None:
    position = cursor_codec.decode(cursor, "platforms")
    if position is None:
        return None
    if len(position) != 1 or type(position[0]) is not int:
        raise InvalidInput("cursor is malformed")
    return position[0]


def _values(body: s.PlatformIn) -> dict[str, Any]:
    check_platform(body)
    values = body.model_dump()
    values["endpoints"] = body.endpoints.model_dump()
    return values


# -------------------------------------------------------------------- platforms


@router.post(
    "/platforms",
    status_code=201,
    summary="Register a platform (operator)",
    response_model=s.PlatformOut,
    responses={**AUTH, **R409, **R422, **R503},
)
async def create_platform(_: Writer, body: s.PlatformIn) -> Any:
    return _platform(repository.create_platform(_values(body)))


@router.get(
    "/platforms", summary="Platforms, by id", response_model=s.PlatformsPage, responses={**AUTH, **R422}
)
async def list_platforms(
    _: Reader,
    is_active: Annotated[bool | None, Query(description="only active (true) or inactive (false)")] = None,
    name: Annotated[str | None, Query(max_length=100, description="name contains (case-insensitive)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    rows = repository.list_platforms(active=is_active, name=name, after_id=_after(cursor), limit=limit + 1)
    page, next_cursor = _page(rows, limit)
    return {"platforms": [_platform(r) for r in page], "next_cursor": next_cursor}


@router.get(
    "/platforms/active",
    summary="Active platforms (the ones the scheduler runs)",
    response_model=s.PlatformsPage,
    responses={**AUTH, **R422},
)
async def list_active(_: Reader, limit: Limit = 200, cursor: Cursor = None) -> Any:
    rows = repository.list_platforms(active=True, after_id=_after(cursor), limit=limit + 1)
    page, next_cursor = _page(rows, limit)
    return {"platforms": [_platform(r) for r in page], "next_cursor": next_cursor}


@router.get(
    "/platforms/{platform_id}",
    summary="One platform",
    response_model=s.PlatformOut,
    responses={**AUTH, **R404},
)
async def get_platform(_: Reader, platform_id: PlatformId) -> Any:
    row = repository.get_platform(platform_id)
    if row is None:
        raise NotFound(f"platform {platform_id} does not exist")
    return _platform(row)


@router.put(
    "/platforms/{platform_id}",
    summary="Replace a platform's settings (operator)",
    response_model=s.PlatformOut,
    responses={**AUTH, **R404, **R409, **R422},
)
async def update_platform(_: Writer, platform_id: PlatformId, body: s.PlatformIn) -> Any:
    return _platform(repository.update_platform(platform_id, _values(body)))


@router.delete(
    "/platforms/{platform_id}",
    summary="Delete a platform (operator): queued jobs are canceled, the history stays",
    response_model=s.DeletedOut,
    responses={**AUTH, **R404},
)
async def delete_platform(_: Writer, platform_id: DeletedId) -> Any:
    canceled = repository.delete_platform(platform_id)
    return {"id": platform_id, "deleted": True, "canceled_jobs": canceled}


# ------------------------------------------------------------------------ run now


@router.post(
    "/run/{task_type}",
    status_code=202,
    summary="Run a task type now for every active platform, or one (operator)",
    response_model=s.RunOut,
    responses={**AUTH, **R404, **R422, **R503},
)
async def run_now(
    _: Writer,
    task_type: TaskTypePath,
    platform_id: Annotated[int | None, Query(ge=1, le=2**62, description="only this platform")] = None,
) -> Any:
    from opsdeck import db

    with db.transaction() as conn:
        # serialises with control calls: a stop either cancels these jobs or comes before them
        repository.lock_task_types(conn, [task_type])
        if platform_id is not None:
            if repository.get_platform(platform_id, conn) is None:
                raise NotFound(f"platform {platform_id} does not exist")
            ids = [platform_id]
        else:
            ids = repository.active_platform_ids(conn)
        rows = jobs.enqueue_manual(conn, task_type, ids)
    return {"task_type": task_type, "job_ids": [r.id for r in rows], "queued": len(rows)}


# ---------------------------------------------------------------------- scheduler


def _state(row: Any, open_jobs: int) -> dict[str, Any]:
    rule_state = control.rule_state(row.task_type)
    wanted = "ENABLED" if rule_should_be_enabled(row.state, row.enabled) else "DISABLED"
    running = rule_should_be_enabled(row.state, row.enabled)
    return {
        "task_type": row.task_type,
        "state": row.state,
        "enabled": row.enabled,
        "interval_minutes": row.interval_minutes,
        "last_run_at": row.last_run_at,
        "last_dispatched": row.last_dispatched,
        "next_run_at": next_run(datetime.now(UTC), row.interval_minutes) if running else None,
        "state_changed_at": row.state_changed_at,
        "state_changed_by": row.state_changed_by,
        "rule": control.rule_name(row.task_type),
        "rule_state": rule_state,
        "in_agreement": None if rule_state is None else rule_state == wanted,
        "open_jobs": open_jobs,
    }


@router.get(
    "/scheduler",
    summary="State per task type, with the EventBridge rule's actual state",
    response_model=s.SchedulerOut,
    responses={**AUTH, **R503},
)
async def scheduler_state(
    principal: Reader,
    reconcile: Annotated[
        bool, Query(description="first bring every rule in line with the stored state (operator role)")
    ] = False,
) -> Any:
    from opsdeck import db

    if reconcile:
        authorize(principal, OPERATOR_ROLE)
        control.reconcile()
    with db.transaction() as conn:
        rows = repository.task_types(conn)
        counts = {r.task_type: repository.open_job_count(conn, r.task_type) for r in rows}
    return {"task_types": [_state(r, counts[r.task_type]) for r in rows]}


def _control(action: str, task_types: tuple[str, ...], principal: Principal) -> dict[str, Any]:
    results = control.control(action, task_types, by=principal.subject)
    return {"action": action, "results": [r.__dict__ for r in results]}


def _control_route(action: Literal["start", "pause", "resume", "stop"]) -> None:
    doc = {
        "start": "Start (also the only way out of stopped)",
        "pause": "Pause: no new jobs; configuration and queued jobs kept",
        "resume": "Resume a paused task type (409 when stopped)",
        "stop": "Stop: no new jobs, queued jobs canceled",
    }[action]

    async def whole(principal: Writer) -> Any:
        return _control(action, TASK_TYPES, principal)

    async def one(principal: Writer, task_type: TaskTypePath) -> Any:
        return _control(action, (task_type,), principal)

    whole.__name__, one.__name__ = f"scheduler_{action}", f"scheduler_task_type_{action}"
    responses = {**AUTH, **R409, **R503}
    router.post(
        f"/scheduler/{action}",
        summary=f"{doc}: every task type (operator)",
        response_model=s.ControlOut,
        responses=responses,
    )(whole)
    router.post(
        f"/scheduler/{{task_type}}/{action}",
        summary=f"{doc}: one task type (operator)",
        response_model=s.ControlOut,
        responses={**responses, **R422},
    )(one)


def _config(row: Any) -> dict[str, Any]:
    return {
        "task_type": row.task_type,
        "enabled": row.enabled,
        "interval_minutes": row.interval_minutes,
        "max_concurrent_jobs": row.max_concurrent_jobs,
        "retry": {"max_attempts": row.retry_max_attempts, "backoff_s": row.retry_backoff_s},
        "updated_at": row.updated_at,
    }


def _config_values(body: s.ConfigPut | s.ConfigPatch) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True, exclude={"task_type", "retry"})
    if body.retry is not None:
        values["retry_max_attempts"] = body.retry.max_attempts
        values["retry_backoff_s"] = body.retry.backoff_s
    return values


@router.get(
    "/scheduler/config",
    summary="Configuration of every task type",
    response_model=s.ConfigsOut,
    responses={**AUTH},
)
async def get_configs(_: Reader) -> Any:
    return {"configs": [_config(r) for r in repository.task_types()]}


@router.post(
    "/scheduler/config",
    summary="Change some fields of one task type's configuration (operator)",
    response_model=s.ConfigOut,
    responses={**AUTH, **R422, **R503},
)
async def patch_config(_: Writer, body: s.ConfigPatch) -> Any:
    # only task_type: nothing to change, the configuration as it is
    return _config(control.update_config(body.task_type, _config_values(body)))


@router.get(
    "/scheduler/config/{task_type}",
    summary="Configuration of one task type",
    response_model=s.ConfigOut,
    responses={**AUTH, **R422},
)
async def get_config(_: Reader, task_type: TaskTypePath) -> Any:
    row = next(r for r in repository.task_types() if r.task_type == task_type)
    return _config(row)


@router.put(
    "/scheduler/config/{task_type}",
    summary="Replace one task type's configuration (operator)",
    response_model=s.ConfigOut,
    responses={**AUTH, **R422, **R503},
)
async def put_config(_: Writer, task_type: TaskTypePath, body: Annotated[s.ConfigPut, Body()]) -> Any:
    return _config(control.update_config(task_type, _config_values(body)))


for _action in ("start", "pause", "resume", "stop"):
    _control_route(_action)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- jobs


@router.get("/jobs", summary="Jobs, newest first", response_model=s.JobsPage, responses={**AUTH, **R422})
async def list_jobs(
    _: Reader,
    platform_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    task_type: Annotated[TaskType | None, Query()] = None,
    status: Annotated[
        Literal["queued", "running", "retrying", "succeeded", "failed", "canceled"] | None, Query()
    ] = None,
    created_after: Annotated[Timestamp | None, Query(description="created at or after (RFC 3339)")] = None,
    created_before: Annotated[Timestamp | None, Query(description="created before (RFC 3339)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    before = None
    position = cursor_codec.decode(cursor, "jobs")
    if position is not None:
        try:
            at, last_id = position
            before = (datetime.fromisoformat(at), str(last_id))
        except (TypeError, ValueError):
            raise InvalidInput("cursor is malformed") from None

    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)

    rows = repository.list_jobs(
        platform_id=platform_id,
        task_type=task_type,
        status=status,
        created_after=utc(created_after),
        created_before=utc(created_before),
        before=before,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = (
        cursor_codec.encode("jobs", page[-1].created_at.isoformat(), page[-1].id)
        if len(rows) > limit
        else None
    )
    return {"jobs": [s.row_dict(r, s.JobOut) for r in page], "next_cursor": next_cursor}


@router.get(
    "/jobs/{job_id}",
    summary="One job with every attempt",
    response_model=s.JobDetail,
    responses={**AUTH, **R404, **R422},
)
async def get_job(
    _: Reader, job_id: Annotated[s.JobId, Path(description="job id", examples=["sync-1-20261203T0900Z"])]
) -> Any:
    found = repository.get_job(job_id)
    if found is None:
        raise NotFound(f"job {job_id} does not exist")
    job, attempts = found
    return {**s.row_dict(job, s.JobOut), "attempt_log": [s.row_dict(a, s.AttemptOut) for a in attempts]}


app = create_app(
    title="opsdeck platform_sync",
    base_path="/platform-sync",
    routers=[router],
    description="Booking platforms, scheduled sync/valid jobs (EventBridge, SQS, Lambda), scheduler control.",
)
handler = lambda_handler(app)
