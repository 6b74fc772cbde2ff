"""PostgreSQL access of platform_sync (schema ``platform_sync``).

Concurrency is handled by the database, never by check-then-act:

* a platform's name is unique among live platforms (partial unique index): a duplicate is a
  409 whichever of two concurrent requests loses;
* control calls and config changes lock their ``task_types`` row (``SELECT … FOR UPDATE``),
  so two concurrent pause/resume/stop calls serialise and the second sees the first's state;
* the dispatcher inserts a tick's jobs in ONE ``INSERT … SELECT … ON CONFLICT DO NOTHING``
  keyed by the deterministic job id: a repeated tick inserts nothing;
* the worker claims jobs with a conditional ``UPDATE … WHERE status IN (…)`` under the task
  type's row lock, which also makes ``max_concurrent_jobs`` hold across concurrent Lambdas;
  attempts and results are written set-based (``unnest``) for the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from opsdeck import db
from opsdeck.db import array_literal
from opsdeck.errors import Conflict, NotFound

from .domain import OPEN_STATUSES, TASK_TYPES

S = "platform_sync"
PLATFORM_COLUMNS = (
    "id, name, description, base_url, endpoints, is_active, connect_timeout_s, read_timeout_s, "
    "auth_header, auth_secret_ref, created_at, updated_at"
)
TASK_TYPE_COLUMNS = (
    "task_type, enabled, interval_minutes, max_concurrent_jobs, retry_max_attempts, retry_backoff_s, "
    "state, state_changed_at, state_changed_by, last_run_at, last_dispatched, updated_at"
)
JOB_COLUMNS = (
    "id, platform_id, task_type, trigger, scheduled_for, status, attempts, last_outcome, last_error, "
    "created_at, started_at, finished_at, updated_at"
)


def _name_conflict(exc: IntegrityError, name: str) -> Conflict | None:
    if "platforms_live_name" in str(exc.orig):
        return Conflict(f"a platform named {name!r} already exists", name=name)
    return None


# -------------------------------------------------------------------- platforms


def create_platform(values: Mapping[str, Any]) -> Any:
    sql = text(
        f"INSERT INTO {S}.platforms (name, description, base_url, endpoints, is_active, connect_timeout_s, "
        "read_timeout_s, auth_header, auth_secret_ref) VALUES (:name, :description, :base_url, "
        "CAST(:endpoints AS jsonb), :is_active, :connect_timeout_s, :read_timeout_s, :auth_header, "
        f":auth_secret_ref) RETURNING {PLATFORM_COLUMNS}"
    )
    try:
        with db.transaction() as conn:
            return conn.execute(sql, _platform_params(values)).one()
    except IntegrityError as exc:
        raise _name_conflict(exc, values["name"]) or exc from None


def _platform_params(values: Mapping[str, Any]) -> dict[str, Any]:
    from opsdeck.jsonutil import dumps

    params = dict(values)
    params["endpoints"] = dumps(values["endpoints"])
    return params


def update_platform(platform_id: int, values: Mapping[str, Any]) -> Any:
    sql = text(
        f"UPDATE {S}.platforms SET name = :name, description = :description, base_url = :base_url, "
        "endpoints = CAST(:endpoints AS jsonb), is_active = :is_active, "
        "connect_timeout_s = :connect_timeout_s, "
        "read_timeout_s = :read_timeout_s, auth_header = :auth_header, auth_secret_ref = :auth_secret_ref, "
        f"updated_at = now() WHERE id = :id AND deleted_at IS NULL RETURNING {PLATFORM_COLUMNS}"
    )
    try:
        with db.transaction() as conn:
            row = conn.execute(sql, {**_platform_params(values), "id": platform_id}).one_or_none()
    except IntegrityError as exc:
        raise _name_conflict(exc, values["name"]) or exc from None
    if row is None:
        raise NotFound(f"platform {platform_id} does not exist")
    return row


def get_platform(platform_id: int, conn: Connection | None = None) -> Any:
    sql = text(f"SELECT {PLATFORM_COLUMNS} FROM {S}.platforms WHERE id = :id AND deleted_at IS NULL")
    if conn is not None:
        return conn.execute(sql, {"id": platform_id}).one_or_none()
    with db.transaction() as c:
        return c.execute(sql, {"id": platform_id}).one_or_none()


def list_platforms(
    *, active: bool | None = None, name: str | None = None, after_id: int | None = None, limit: int
) -> list[Any]:
    where = ["deleted_at IS NULL"]
    params: dict[str, Any] = {"limit": limit}
    if active is not None:
        where.append("is_active = :active")
        params["active"] = active
    if name:
        where.append("position(lower(:name) in lower(name)) > 0")
        params["name"] = name
    if after_id is not None:
        where.append("id > :after")
        params["after"] = after_id
    sql = text(
        f"SELECT {PLATFORM_COLUMNS} FROM {S}.platforms WHERE {' AND '.join(where)} ORDER BY id LIMIT :limit"
    )
    with db.transaction() as conn:
        return list(conn.execute(sql, params))


def delete_platform(platform_id: int) -> int:
    """Soft-delete; cancels the platform's jobs that have not started. Returns how many."""
    with db.transaction() as conn:
        row = conn.execute(
            text(
                f"UPDATE {S}.platforms SET deleted_at = now(), is_active = false, updated_at = now() "
                "WHERE id = :id AND deleted_at IS NULL RETURNING id"
            ),
            {"id": platform_id},
        ).one_or_none()
        if row is None:
            raise NotFound(f"platform {platform_id} does not exist")
        return cancel_open_jobs(conn, platform_id=platform_id, reason="platform deleted")


# ------------------------------------------------------------------- task types


def _ensure_task_types(conn: Connection) -> None:
    """Put back a task type's default row if it is missing (the migration inserts them; a
    truncated table, e.g. by a test harness, must not leave the scheduler without state)."""
    conn.execute(
        text(
            f"INSERT INTO {S}.task_types (task_type) SELECT unnest(CAST(:names AS text[])) "
            "ON CONFLICT DO NOTHING"
        ),
        {"names": array_literal(TASK_TYPES)},
    )


def task_types(conn: Connection | None = None) -> list[Any]:
    sql = text(f"SELECT {TASK_TYPE_COLUMNS} FROM {S}.task_types ORDER BY task_type")

    def read(c: Connection) -> list[Any]:
        rows = list(c.execute(sql))
        if len(rows) < len(TASK_TYPES):
            _ensure_task_types(c)
            rows = list(c.execute(sql))
        return rows

    if conn is not None:
        return read(conn)
    with db.transaction() as c:
        return read(c)


def lock_task_types(conn: Connection, names: Sequence[str]) -> dict[str, Any]:
    """Lock the rows of ``names`` (in a fixed order, so two callers never deadlock)."""
    sql = text(
        f"SELECT {TASK_TYPE_COLUMNS} FROM {S}.task_types WHERE task_type = ANY(CAST(:names AS text[])) "
        "ORDER BY task_type FOR UPDATE"
    )
    params = {"names": array_literal(sorted(names))}
    rows = {r.task_type: r for r in conn.execute(sql, params)}
    if len(rows) < len(set(names)):
        _ensure_task_types(conn)
        rows = {r.task_type: r for r in conn.execute(sql, params)}
    return rows


def update_task_type(conn: Connection, task_type: str, values: Mapping[str, Any]) -> Any:
    allowed = {"enabled", "interval_minutes", "max_concurrent_jobs", "retry_max_attempts", "retry_backoff_s"}
    fields = {k: v for k, v in values.items() if k in allowed}
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    sql = text(
        f"UPDATE {S}.task_types SET {sets + ', ' if sets else ''}updated_at = now() "
        f"WHERE task_type = :task_type RETURNING {TASK_TYPE_COLUMNS}"
    )
    return conn.execute(sql, {**fields, "task_type": task_type}).one()


def set_state(conn: Connection, task_type: str, state: str, by: str) -> Any:
    return conn.execute(
        text(
            f"UPDATE {S}.task_types SET state = :state, state_changed_at = now(), state_changed_by = :by, "
            f"updated_at = now() WHERE task_type = :task_type RETURNING {TASK_TYPE_COLUMNS}"
        ),
        {"state": state, "by": by, "task_type": task_type},
    ).one()


def mark_run(conn: Connection, task_type: str, when: datetime, dispatched: int) -> None:
    conn.execute(
        text(
            f"UPDATE {S}.task_types SET last_run_at = GREATEST(coalesce(last_run_at, :when), :when), "
            "last_dispatched = :n WHERE task_type = :task_type"
        ),
        {"when": when, "n": dispatched, "task_type": task_type},
    )


# ------------------------------------------------------------------------- jobs


def insert_scheduled_jobs(conn: Connection, task_type: str, minute: datetime, stamp: str) -> list[Any]:
    """One job per active platform for ``minute``; only those not there yet. ONE statement."""
    return list(
        conn.execute(
            text(
                f"INSERT INTO {S}.jobs (id, platform_id, task_type, trigger, scheduled_for, status) "
                "SELECT :task_type || '-' || p.id || '-' || :stamp, p.id, :task_type, 'schedule', :minute, "
                "'queued' "
                f"FROM {S}.platforms p WHERE p.deleted_at IS NULL AND p.is_active "
                "ON CONFLICT DO NOTHING RETURNING id, platform_id"
            ),
            {"task_type": task_type, "minute": minute, "stamp": stamp},
        )
    )


def insert_manual_jobs(
    conn: Connection, task_type: str, platform_ids: Sequence[int], token: str
) -> list[Any]:
    return list(
        conn.execute(
            text(
                f"INSERT INTO {S}.jobs (id, platform_id, task_type, trigger, scheduled_for, status) "
                "SELECT :task_type || '-' || p.id || '-run-' || :token, p.id, :task_type, 'manual', now(), "
                "'queued' "
                f"FROM {S}.platforms p WHERE p.id = ANY(CAST(:ids AS bigint[])) "
                "AND p.deleted_at IS NULL ORDER BY p.id RETURNING id, platform_id"
            ),
            {"task_type": task_type, "ids": array_literal(platform_ids), "token": token},
        )
    )


def active_platform_ids(conn: Connection) -> list[int]:
    return list(
        conn.execute(
            text(f"SELECT id FROM {S}.platforms WHERE deleted_at IS NULL AND is_active ORDER BY id")
        ).scalars()
    )


def cancel_open_jobs(
    conn: Connection, *, task_type: str | None = None, platform_id: int | None = None, reason: str
) -> int:
    """Cancel jobs that have not started (queued, or waiting for a retry). Running ones finish."""
    where = ["status IN ('queued', 'retrying')"]
    params: dict[str, Any] = {"reason": reason}
    if task_type is not None:
        where.append("task_type = :task_type")
        params["task_type"] = task_type
    if platform_id is not None:
        where.append("platform_id = :platform_id")
        params["platform_id"] = platform_id
    result = conn.execute(
        text(
            f"UPDATE {S}.jobs SET status = 'canceled', last_error = :reason, finished_at = now(), "
            f"updated_at = now() WHERE {' AND '.join(where)}"
        ),
        params,
    )
    return result.rowcount


def list_jobs(
    *,
    platform_id: int | None,
    task_type: str | None,
    status: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    where = ["true"]
    params: dict[str, Any] = {"limit": limit}
    for column, value in (("platform_id", platform_id), ("task_type", task_type), ("status", status)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if created_after is not None:
        where.append("created_at >= :created_after")
        params["created_after"] = created_after
    if created_before is not None:
        where.append("created_at < :created_before")
        params["created_before"] = created_before
    if before is not None:
        where.append("(created_at, id) < (:before_at, :before_id)")
        params["before_at"], params["before_id"] = before
    sql = text(
        f"SELECT {JOB_COLUMNS} FROM {S}.jobs WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    with db.transaction() as conn:
        return list(conn.execute(sql, params))


def get_job(job_id: str) -> tuple[Any, list[Any]] | None:
    with db.transaction() as conn:
        job = conn.execute(
            text(f"SELECT {JOB_COLUMNS} FROM {S}.jobs WHERE id = :id"), {"id": job_id}
        ).one_or_none()
        if job is None:
            return None
        attempts = list(
            conn.execute(
                text(
                    "SELECT attempt, outcome, started_at, duration_ms, http_status, summary, error "
                    f"FROM {S}.job_attempts WHERE job_id = :id ORDER BY attempt, id"
                ),
                {"id": job_id},
            )
        )
    return job, attempts


# ----------------------------------------------------------------------- worker


@dataclass(frozen=True, slots=True)
class Claimed:
    job_id: str
    task_type: str
    attempt: int
    platform: Any
    retry_max_attempts: int
    retry_backoff_s: int


@dataclass(frozen=True, slots=True)
class Skipped:
    job_id: str
    #: ``done`` (succeeded/canceled/unknown: acknowledge), ``busy-running`` (running elsewhere
    #: under a live lease: acknowledge, its own message retries it), ``busy-limit`` (the task
    #: type is at its concurrency limit: try again later), ``exhausted`` (failed, redelivered)
    reason: str
    detail: str


def claim(
    conn: Connection,
    job_ids: Sequence[str],
    lease_s: float,
    *,
    fresh: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Claimed], list[Skipped]]:
    """Claim what may run now; the rest is skipped with a reason.

    Under the task types' row locks: count the jobs running with a live lease per type and
    claim at most ``max_concurrent_jobs`` minus that. A job is claimable when queued,
    waiting for a retry, running with an expired lease (its Lambda died), or failed when its
    message is ``fresh`` (received for the first time: a DLQ replay runs it again).
    Succeeded and canceled jobs are never claimed again.
    """
    ids = list(dict.fromkeys(job_ids))
    job_sql = text(
        f"SELECT id, task_type, status, (lease_until IS NOT NULL AND lease_until > now()) AS leased "
        f"FROM {S}.jobs WHERE id = ANY(CAST(:ids AS text[]))"
    )
    # A job's task type never changes, so it can be read before the lock; its status is read
    # again once the task types are locked (a new snapshot: whatever a concurrent claimer
    # committed while this one waited is seen).
    task_types = sorted({r.task_type for r in conn.execute(job_sql, {"ids": array_literal(ids)})})
    types = lock_task_types(conn, task_types)
    jobs = {r.id: r for r in conn.execute(job_sql, {"ids": array_literal(ids)})}
    skipped = [Skipped(j, "done", "unknown job") for j in ids if j not in jobs]
    running = dict(
        conn.execute(
            text(
                f"SELECT task_type, count(*) FROM {S}.jobs WHERE status = 'running' AND lease_until > now() "
                "AND task_type = ANY(CAST(:types AS text[])) GROUP BY task_type"
            ),
            {"types": array_literal(sorted(types))},
        ).all()
    )
    wanted: list[str] = []
    for job_id in ids:
        job = jobs.get(job_id)
        if job is None:
            continue
        if job.status in ("succeeded", "canceled"):
            skipped.append(Skipped(job_id, "done", f"job is {job.status}"))
            continue
        if job.status == "running" and job.leased:
            skipped.append(Skipped(job_id, "busy-running", "job is running elsewhere"))
            continue
        if job.status == "failed" and job_id not in fresh:
            skipped.append(Skipped(job_id, "exhausted", "job failed; its message goes to the DLQ"))
            continue
        config = types[job.task_type]
        if running.get(job.task_type, 0) >= config.max_concurrent_jobs:
            skipped.append(Skipped(job_id, "busy-limit", "task type at its max_concurrent_jobs"))
            continue
        running[job.task_type] = running.get(job.task_type, 0) + 1
        wanted.append(job_id)
    if not wanted:
        return [], skipped
    rows = conn.execute(
        text(
            f"UPDATE {S}.jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now(), "
            "lease_until = now() + make_interval(secs => :lease), updated_at = now() "
            "WHERE j.id = ANY(CAST(:ids AS text[])) "
            # the same rule once more, in the statement that takes the row lock: it holds even
            # for a caller that never took the task type locks
            "AND (j.status IN ('queued', 'retrying') "
            "OR (j.status = 'running' AND (j.lease_until IS NULL OR j.lease_until <= now())) "
            "OR (j.status = 'failed' AND j.id = ANY(CAST(:fresh AS text[])))) "
            "RETURNING j.id, j.task_type, j.attempts, j.platform_id"
        ),
        {"ids": array_literal(wanted), "lease": lease_s, "fresh": array_literal(sorted(fresh))},
    ).all()
    won = {r.id for r in rows}
    skipped += [Skipped(j, "busy-running", "job was claimed elsewhere") for j in wanted if j not in won]
    platforms = {
        p.id: p
        for p in conn.execute(
            text(
                f"SELECT {PLATFORM_COLUMNS}, deleted_at FROM {S}.platforms "
                "WHERE id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"ids": array_literal(sorted({r.platform_id for r in rows}))},
        )
    }
    claimed = [
        Claimed(
            r.id,
            r.task_type,
            r.attempts,
            platforms[r.platform_id],
            types[r.task_type].retry_max_attempts,
            types[r.task_type].retry_backoff_s,
        )
        for r in rows
    ]
    return claimed, skipped


@dataclass(frozen=True, slots=True)
class AttemptResult:
    job_id: str
    attempt: int
    outcome: str
    started_at: datetime
    duration_ms: float
    http_status: int | None
    summary: str | None
    error: str | None
    #: the job's status after this attempt: succeeded, failed or retrying
    job_status: str


def record(conn: Connection, results: Iterable[AttemptResult]) -> None:
    """Every attempt, and each job's new status, for the whole batch in two statements.

    A job canceled while its attempt ran stays canceled (the ``WHERE`` keeps it).
    """
    results = list(results)
    if not results:
        return

    def col(name: str) -> str:
        return array_literal([getattr(r, name) for r in results])

    conn.execute(
        text(
            f"INSERT INTO {S}.job_attempts (job_id, attempt, outcome, started_at, duration_ms, http_status, "
            "summary, error) SELECT * FROM unnest(CAST(:job_id AS text[]), CAST(:attempt AS int[]), "
            "CAST(:outcome AS text[]), CAST(:started_at AS timestamptz[]), CAST(:duration_ms AS float8[]), "
            "CAST(:http_status AS int[]), CAST(:summary AS text[]), CAST(:error AS text[]))"
        ),
        {n: col(n) for n in ("job_id", "attempt", "outcome", "started_at", "http_status", "summary", "error")}
        | {"duration_ms": array_literal([float(r.duration_ms) for r in results])},
    )
    conn.execute(
        text(
            f"UPDATE {S}.jobs j SET status = u.status, last_outcome = u.outcome, last_error = u.error, "
            "lease_until = NULL, updated_at = now(), "
            "finished_at = CASE WHEN u.status IN ('succeeded', 'failed') THEN now() ELSE NULL END "
            "FROM unnest(CAST(:job_id AS text[]), CAST(:status AS text[]), CAST(:outcome AS text[]), "
            "CAST(:error AS text[])) AS u(id, status, outcome, error) "
            "WHERE j.id = u.id AND j.status = 'running'"
        ),
        {
            "job_id": col("job_id"),
            "status": col("job_status"),
            "outcome": col("outcome"),
            "error": col("error"),
        },
    )


def open_job_count(conn: Connection, task_type: str) -> int:
    return conn.execute(
        text(f"SELECT count(*) FROM {S}.jobs WHERE task_type = :t AND status = ANY(CAST(:s AS text[]))"),
        {"t": task_type, "s": array_literal(OPEN_STATUSES)},
    ).scalar_one()
