"""Request and response bodies of ``platform-sync-api`` (constraints declared, so OpenAPI has them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StringConstraints

from .domain import JOB_ID, MAX_ATTEMPTS, MAX_CONNECT_TIMEOUT_S, MAX_READ_TIMEOUT_S, TaskType


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def int_in(low: int, high: int) -> Any:
    """A JSON integer within ``low..high`` (``3``, also ``3.0``), never ``true``/``false``."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_not_a_boolean)]


Attempts = int_in(1, MAX_ATTEMPTS)
Backoff = int_in(0, 900)
Interval = int_in(1, 1440)
Concurrency = int_in(1, 1000)

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._\-]*$")
]
EndpointPath = Annotated[str, StringConstraints(max_length=200, pattern=r"^/[A-Za-z0-9._~\-/]*$")]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]
#: a secret under a ``platform-sync/`` prefix (optionally below the stack's name), by name or ARN;
#: the worker may read only ``<stack>/platform-sync/…`` (IAM), and checks the prefix before reading
AUTH_REF_PATTERN = (
    r"^(?!.*\.\.)(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?"
    r"(?:[A-Za-z0-9_+=.@-]+/)?platform-sync/[A-Za-z0-9_+=@-][A-Za-z0-9_+=.@/-]*$"
)
SecretRef = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=AUTH_REF_PATTERN)]

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL_TLD = r"(?:localhost|local|internal|localdomain|lan|intranet|arpa)"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
#: the URLs ``opsdeck.outbound.check_url`` can accept, as a pattern: a host *name* with a dot, not
#: under a local-only top-level name, not something a resolver reads as an IPv4 number (hex/octal
#: notations), no ``xn--`` labels; or, for local mode only, a loopback 127.x.y.z. The scheme is
#: https, or http in local mode. What a pattern cannot say is checked too (422 outbound-refused):
#: outside local mode http and 127.x are refused, and a name that resolves now to a non-public
#: address is refused.
BASE_URL = (
    r"^https?://(?:"
    rf"(?![0-9A-Fa-fXx.]*[0-9][0-9A-Fa-fXx.]*(?:[:/]|$))(?![^/:]*xn--)(?:{_LABEL}\.)+(?!{_LOCAL_TLD}(?:[:/]|$)){_LABEL}"
    rf"|127\.{_OCTET}\.{_OCTET}\.{_OCTET}"
    rf"){_PORT}(?:/[A-Za-z0-9._~!$&()*+,;=:@/-]*)?$"
)
BaseUrl = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=BASE_URL)]
JobId = Annotated[str, StringConstraints(pattern=JOB_ID, max_length=80)]


# ------------------------------------------------------------------- examples
EXAMPLE_PLATFORM: dict[str, Any] = {
    "id": 1,
    "name": "staywell",
    "description": "Staywell booking platform",
    "base_url": "https://sync.staywell.example.com",
    "endpoints": {"sync": "/api/sync", "valid": "/api/valid"},
    "is_active": True,
    "connect_timeout_s": 3.0,
    "read_timeout_s": 10.0,
    "auth_header": "authorization",
    "auth_secret_ref": "opsdeck-prod/platform-sync/staywell",
    "created_at": "2026-12-03T08:00:00Z",
    "updated_at": "2026-12-03T08:00:00Z",
}
EXAMPLE_JOB: dict[str, Any] = {
    "id": "sync-1-20261203T0900Z",
    "platform_id": 1,
    "task_type": "sync",
    "trigger": "schedule",
    "scheduled_for": "2026-12-03T09:00:00Z",
    "status": "succeeded",
    "attempts": 2,
    "last_outcome": "succeeded",
    "last_error": None,
    "created_at": "2026-12-03T09:00:00.120Z",
    "started_at": "2026-12-03T09:00:20.210Z",
    "finished_at": "2026-12-03T09:00:20.390Z",
    "updated_at": "2026-12-03T09:00:20.390Z",
}
EXAMPLE_ATTEMPTS: list[dict[str, Any]] = [
    {
        "attempt": 1,
        "outcome": "timed_out",
        "started_at": "2026-12-03T09:00:00.200Z",
        "duration_ms": 10003.1,
        "http_status": None,
        "summary": None,
        "error": "no response within 10 s",
    },
    {
        "attempt": 2,
        "outcome": "succeeded",
        "started_at": "2026-12-03T09:00:20.210Z",
        "duration_ms": 180.4,
        "http_status": 200,
        "summary": '{"ok":true,"synced":1}',
        "error": None,
    },
]
EXAMPLE_CONFIG: dict[str, Any] = {
    "task_type": "sync",
    "enabled": True,
    "interval_minutes": 1,
    "max_concurrent_jobs": 50,
    "retry": {"max_attempts": 3, "backoff_s": 10},
    "updated_at": "2026-12-03T08:00:00Z",
}
EXAMPLE_STATE: dict[str, Any] = {
    "task_type": "sync",
    "state": "running",
    "enabled": True,
    "interval_minutes": 1,
    "last_run_at": "2026-12-03T09:00:00Z",
    "last_dispatched": 120,
    "next_run_at": "2026-12-03T09:01:00Z",
    "state_changed_at": "2026-12-03T08:00:00Z",
    "state_changed_by": "operator-1",
    "rule": "opsdeck-prod-platform-sync-sync-schedule",
    "rule_state": "ENABLED",
    "in_agreement": True,
    "open_jobs": 3,
}


def _examples(*values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(values)})


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sync: EndpointPath = "/sync"
    valid: EndpointPath = "/valid"


class PlatformIn(BaseModel):
    """A platform service (a Node.js app in the seed) and how to call it."""

    model_config = ConfigDict(
        extra="forbid",
        regex_engine="python-re",  # BASE_URL and AUTH_REF_PATTERN use look-aheads (ECMA-262 has them too)
        json_schema_extra={
            "examples": [
                {
                    "name": "staywell",
                    "description": "Staywell booking platform",
                    "base_url": "https://sync.staywell.example.com",
                    "endpoints": {"sync": "/api/sync", "valid": "/api/valid"},
                    "is_active": True,
                    "connect_timeout_s": 3,
                    "read_timeout_s": 10,
                    "auth_header": "authorization",
                    "auth_secret_ref": "opsdeck-prod/platform-sync/staywell",
                }
            ]
        },
    )
    name: Name
    description: str | None = Field(None, max_length=500)
    base_url: BaseUrl = Field(
        description="https URL of the platform service, by host name (SSRF-checked: public addresses "
        "only, also where the name resolves; plain http and 127.x only in local mode)"
    )
    endpoints: Endpoints = Field(default_factory=Endpoints, description="path per task type")
    is_active: StrictBool = True  # JSON true/false only: 0 or "yes" are not booleans
    connect_timeout_s: StrictFloat = Field(3.0, gt=0, le=MAX_CONNECT_TIMEOUT_S)
    read_timeout_s: StrictFloat = Field(10.0, gt=0, le=MAX_READ_TIMEOUT_S)
    auth_header: HeaderName | None = Field(
        None,
        description="header that carries the secret's value (default authorization; unused without a secret)",
    )
    auth_secret_ref: SecretRef | None = Field(
        None,
        description="name or ARN of a Secrets Manager secret under `<stack>/platform-sync/`: the worker "
        "can read only those; the value is read at call time, never stored nor returned",
    )


class PlatformOut(BaseModel):
    model_config = _examples(EXAMPLE_PLATFORM)
    id: int
    name: str
    description: str | None
    base_url: str
    endpoints: dict[str, str]
    is_active: bool
    connect_timeout_s: float
    read_timeout_s: float
    auth_header: str | None
    auth_secret_ref: str | None = Field(
        description="the reference only; the value never leaves Secrets Manager"
    )
    created_at: datetime
    updated_at: datetime


class PlatformsPage(BaseModel):
    model_config = _examples({"platforms": [EXAMPLE_PLATFORM], "next_cursor": "WyJwbGF0Zm9ybXMiLDFd"})
    platforms: list[PlatformOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class DeletedOut(BaseModel):
    model_config = _examples({"id": 2, "deleted": True, "canceled_jobs": 1})
    id: int
    deleted: Literal[True] = True
    canceled_jobs: int


class RunOut(BaseModel):
    model_config = _examples(
        {"task_type": "sync", "job_ids": ["sync-1-run-5f0c1e8a00004000800000000000000a"], "queued": 1}
    )
    task_type: TaskType
    job_ids: list[str]
    queued: int


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: Attempts = Field(description="calls per job, the first included")
    backoff_s: Backoff = Field(description="delay before the 2nd attempt; doubles after")


class ConfigOut(BaseModel):
    model_config = _examples(EXAMPLE_CONFIG)
    task_type: TaskType
    enabled: bool
    interval_minutes: int
    max_concurrent_jobs: int
    retry: RetryPolicy
    updated_at: datetime


class ConfigPut(BaseModel):
    """The whole configuration of one task type."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "interval_minutes": 1,
                    "max_concurrent_jobs": 50,
                    "retry": {"max_attempts": 3, "backoff_s": 10},
                }
            ]
        },
    )
    enabled: StrictBool
    interval_minutes: Interval
    max_concurrent_jobs: Concurrency
    retry: RetryPolicy


class ConfigPatch(BaseModel):
    """Some fields of one task type's configuration (``POST /scheduler/config``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"task_type": "valid", "interval_minutes": 5}]},
    )
    task_type: TaskType
    enabled: StrictBool | None = None
    interval_minutes: Interval | None = None
    max_concurrent_jobs: Concurrency | None = None
    retry: RetryPolicy | None = None


class ConfigsOut(BaseModel):
    model_config = _examples(
        {"configs": [EXAMPLE_CONFIG, {**EXAMPLE_CONFIG, "task_type": "valid", "interval_minutes": 5}]}
    )
    configs: list[ConfigOut]


class TaskTypeState(BaseModel):
    model_config = _examples(EXAMPLE_STATE)
    task_type: TaskType
    state: Literal["running", "paused", "stopped"]
    enabled: bool
    interval_minutes: int
    last_run_at: datetime | None
    last_dispatched: int | None
    next_run_at: datetime | None = Field(description="null unless running and enabled")
    state_changed_at: datetime
    state_changed_by: str | None
    rule: str | None = Field(description="the EventBridge rule's name")
    rule_state: Literal["ENABLED", "DISABLED"] | None = Field(description="as EventBridge reports it")
    in_agreement: bool | None = Field(description="rule state matches the stored state")
    open_jobs: int


class SchedulerOut(BaseModel):
    model_config = _examples(
        {
            "task_types": [
                EXAMPLE_STATE,
                {
                    **EXAMPLE_STATE,
                    "task_type": "valid",
                    "state": "paused",
                    "next_run_at": None,
                    "rule_state": "DISABLED",
                    "rule": "opsdeck-prod-platform-sync-valid-schedule",
                },
            ]
        }
    )
    task_types: list[TaskTypeState]


class ControlItem(BaseModel):
    model_config = _examples(
        {"task_type": "sync", "previous": "running", "state": "paused", "changed": True, "canceled_jobs": 0}
    )
    task_type: TaskType
    previous: str
    state: str
    changed: bool
    canceled_jobs: int


class ControlOut(BaseModel):
    model_config = _examples(
        {
            "action": "pause",
            "results": [
                {
                    "task_type": "sync",
                    "previous": "running",
                    "state": "paused",
                    "changed": True,
                    "canceled_jobs": 0,
                }
            ],
        }
    )
    action: Literal["start", "pause", "resume", "stop"]
    results: list[ControlItem]


class AttemptOut(BaseModel):
    model_config = _examples(EXAMPLE_ATTEMPTS[1])
    attempt: int
    outcome: str
    started_at: datetime
    duration_ms: float
    http_status: int | None
    summary: str | None
    error: str | None


class JobOut(BaseModel):
    model_config = _examples(EXAMPLE_JOB)
    id: str
    platform_id: int
    task_type: TaskType
    trigger: Literal["schedule", "manual"]
    scheduled_for: datetime
    status: Literal["queued", "running", "retrying", "succeeded", "failed", "canceled"]
    attempts: int
    last_outcome: str | None
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobDetail(JobOut):
    model_config = _examples({**EXAMPLE_JOB, "attempt_log": EXAMPLE_ATTEMPTS})
    attempt_log: list[AttemptOut]


class JobsPage(BaseModel):
    model_config = _examples({"jobs": [EXAMPLE_JOB], "next_cursor": None})
    jobs: list[JobOut]
    next_cursor: str | None


def row_dict(row: Any, model: type[BaseModel]) -> dict[str, Any]:
    mapping = row._mapping
    return {k: mapping[k] for k in model.model_fields if k in mapping}
