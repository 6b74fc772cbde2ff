"""Response bodies of the ops console's API, as the OpenAPI document states them (with examples).

Free-form parts stay free-form on purpose: a function's trigger and resources (``describe``), an
invocation's event and result, a capability's own schedule state, message attributes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_REQUEST_ID = "00000000-0000-4000-8000-00000000c0de"
TIME = "2026-12-03T08:39:10.000Z"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Whoami(BaseModel):
    model_config = _examples({"subject": "alice", "roles": ["ops-admin"], "can_act": True, "mode": "local"})
    subject: str
    roles: list[str]
    can_act: bool = Field(description="the caller may replay, fire, enable/disable and re-invoke")
    mode: Literal["local", "aws"]


class FunctionStats(BaseModel):
    invocations: int
    errors: int
    p95_ms: float | None


class OverviewFunction(BaseModel):
    name: str
    capability: str
    handler: str
    description: str
    memory_mb: int
    timeout_s: int
    trigger: dict[str, Any]
    uses: dict[str, Any]
    last_hour: FunctionStats


class Capability(BaseModel):
    name: str
    functions: list[OverviewFunction]


class Health(BaseModel):
    status: Literal["ok", "down"]
    stage: str
    checks: dict[str, dict[str, Any]]


class Overview(BaseModel):
    model_config = _examples(
        {
            "mode": "local",
            "window_s": 3600,
            "capabilities": [
                {
                    "name": "ops",
                    "functions": [
                        {
                            "name": "ops-api",
                            "capability": "ops",
                            "handler": "functions.ops.api.handler",
                            "description": "Health, the function catalog and the ops console",
                            "memory_mb": 256,
                            "timeout_s": 29,
                            "trigger": {
                                "kind": "http",
                                "routes": [{"route": "GET /ops/health", "authorizer": None}],
                            },
                            "uses": {"database": True, "cache": True},
                            "last_hour": {"invocations": 226, "errors": 0, "p95_ms": 15.8},
                        }
                    ],
                }
            ],
            "health": {
                "status": "ok",
                "stage": "local",
                "checks": {
                    "database": {"status": "ok", "latency_ms": 2.4},
                    "cache": {"status": "ok", "latency_ms": 0.4},
                },
            },
        }
    )
    mode: Literal["local", "aws"]
    window_s: int
    capabilities: list[Capability]
    health: Health


class QueueState(BaseModel):
    name: str = Field(description="catalog name (the DLQ: <name>-dlq)")
    queue: str = Field(description="SQS queue name without the stack prefix")
    dlq: bool
    source: str | None = Field(description="a DLQ's source queue")
    consumer: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None


class Queues(BaseModel):
    model_config = _examples(
        {
            "queues": [
                {
                    "name": "backoffice-changes",
                    "queue": "backoffice-changes",
                    "dlq": False,
                    "source": None,
                    "consumer": "backoffice-consumer",
                    "visible": 0,
                    "in_flight": 0,
                    "delayed": 0,
                    "oldest_age_s": None,
                },
                {
                    "name": "backoffice-changes-dlq",
                    "queue": "backoffice-changes-dlq",
                    "dlq": True,
                    "source": "backoffice-changes",
                    "consumer": "backoffice-consumer",
                    "visible": 1,
                    "in_flight": 0,
                    "delayed": 0,
                    "oldest_age_s": 2160.0,
                },
            ]
        }
    )
    queues: list[QueueState]


class Message(BaseModel):
    message_id: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]]
    receive_count: int
    state: Literal["visible", "delayed", "inflight"]
    failure: str | None = Field(description="the reason the consumer logged when it rejected the message")


class Messages(BaseModel):
    model_config = _examples(
        {
            "queue": "backoffice-changes-dlq",
            "messages": [
                {
                    "message_id": "b49b4534-c985-46f5-b1ea-a81e65bc7e91",
                    "body": '{"op": "u", "after": {"tx_id": "poison-1", "amount": "12.50"}}',
                    "attributes": {"ApproximateReceiveCount": "5", "SentTimestamp": "1796286550000"},
                    "message_attributes": {},
                    "receive_count": 5,
                    "state": "visible",
                    "failure": "invalid ledger_entries.u.after.amount: Input should be a valid integer",
                }
            ],
        }
    )
    queue: str
    messages: list[Message]


class Replayed(BaseModel):
    model_config = _examples(
        {
            "matched": 1,
            "moved": 1,
            "method": "receive-send-delete",
            "scanned": 1,
            "message_ids": ["b49b4534-c985-46f5-b1ea-a81e65bc7e91"],
            "audit_id": 7,
        }
    )
    matched: int
    moved: int
    method: Literal["move-task", "receive-send-delete"]
    scanned: int | None = None
    status: str | None = Field(None, description="move task: COMPLETED, RUNNING, FAILED, …")
    task: str | None = None
    failure: str | None = None
    message_ids: list[str] | None = Field(
        None, description="receive-send-delete: the ids moved (dry run: that would move), the first 100"
    )
    audit_id: int


class ScheduleState(BaseModel):
    name: str
    rule: str
    arn: str | None
    expression: str
    state: str = Field(description="ENABLED, DISABLED (DELETED locally when the rule is gone)")
    function: str
    capability: str
    last_fire: str | None
    next_fire: str | None
    capability_state: dict[str, Any] | None = Field(
        description="what functions/<capability>/ops.py: schedule_state(name) returns"
    )


_SCHEDULE = {
    "name": "marketplace-orders-schedule",
    "rule": "opsdeck-local-marketplace-orders-schedule",
    "arn": "arn:aws:events:us-east-1:000000000000:rule/opsdeck-local-marketplace-orders-schedule",
    "expression": "rate(15 minutes)",
    "state": "ENABLED",
    "function": "marketplace-orders-sync",
    "capability": "marketplace",
    "last_fire": TIME,
    "next_fire": "2026-12-03T08:54:10.000Z",
    "capability_state": None,
}


class Schedules(BaseModel):
    model_config = _examples({"schedules": [_SCHEDULE]})
    schedules: list[ScheduleState]


class ScheduleChanged(ScheduleState):
    model_config = _examples({**_SCHEDULE, "state": "DISABLED", "next_fire": None, "audit_id": 8})
    audit_id: int


class Fired(BaseModel):
    model_config = _examples(
        {
            "schedule": "marketplace-orders-schedule",
            "function": "marketplace-orders-sync",
            "event_id": "5b0c7d0e-3a55-4f0e-9c8e-2f9f3a0d6c11",
            "audit_id": 9,
        }
    )
    schedule: str
    function: str
    event_id: str
    audit_id: int


class Invocation(BaseModel):
    """One journal entry (docs/localcloud.md, Journal)."""

    model_config = ConfigDict(extra="allow")
    start: str
    function: str
    trigger: str
    event_id: str | None = None
    request_id: str
    duration_ms: float
    outcome: str
    batch_item_failures: list[str] | None = None
    error: str | None = None
    status: int | None = None
    route: str | None = None
    records: int | None = None
    queue: str | None = None
    attempt: int | None = None


_INVOCATION = {
    "start": TIME,
    "function": "ops-api",
    "trigger": "http",
    "event_id": EXAMPLE_REQUEST_ID,
    "request_id": EXAMPLE_REQUEST_ID,
    "duration_ms": 1.8,
    "outcome": "ok",
    "batch_item_failures": None,
    "error": None,
    "status": 200,
    "route": "GET /ops/functions",
}


class Invocations(BaseModel):
    model_config = _examples({"invocations": [_INVOCATION]})
    invocations: list[Invocation]


class InvocationDetail(BaseModel):
    """The journal entry (locally) with the event, the result and the log lines; on AWS the lines only."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    **_INVOCATION,
                    "event": {"rawPath": "/ops/functions"},
                    "result": {"statusCode": 200},
                    "logs": [],
                    "kept": True,
                }
            ]
        },
    )
    request_id: str
    function: str
    event: Any = None
    result: Any = None
    logs: list[str]
    kept: bool = Field(description="event and result are still kept (locally: the last 2,000 invocations)")


class Reinvoked(BaseModel):
    model_config = _examples(
        {
            "function": "ops-api",
            "request_id": "8c5f7a4e-57a4-4bde-9f43-4c1f0e5a3a21",
            "outcome": "ok",
            "error": None,
            "result": {"statusCode": 200},
            "audit_id": 10,
        }
    )
    function: str
    request_id: str
    outcome: str
    error: str | None
    result: Any = None
    audit_id: int


class Series(BaseModel):
    model_config = _examples(
        {
            "start": "2026-12-03T08:35:00.000Z",
            "end": "2026-12-03T08:40:00.000Z",
            "step_s": 60,
            "minutes": [
                "2026-12-03T08:35:00.000Z",
                "2026-12-03T08:36:00.000Z",
                "2026-12-03T08:37:00.000Z",
                "2026-12-03T08:38:00.000Z",
                "2026-12-03T08:39:00.000Z",
            ],
            "invocations": {"backoffice-consumer": [0, 12, 3, 0, 1]},
            "errors": {"backoffice-consumer": [0, 0, 1, 0, 1]},
            "queue_depth": {"backoffice-changes-dlq": [["2026-12-03T08:39:10.000Z", 1, 0]]},
        }
    )
    start: str
    end: str
    step_s: int
    minutes: list[str]
    invocations: dict[str, list[int]]
    errors: dict[str, list[int]]
    queue_depth: dict[str, list[list[str | int | None]]] = Field(
        description="per queue: [time, visible, in flight] samples (in flight unknown on AWS: null)"
    )


class AuditEntry(BaseModel):
    id: int
    at: str
    subject: str
    roles: list[str]
    action: Literal["replay", "fire", "enable", "disable", "reinvoke"]
    target: str
    params: dict[str, Any]
    outcome: str | None = Field(description="ok, a problem type slug, or null while it runs")
    result: Any = None
    request_id: str
    source_ip: str | None


class AuditLog(BaseModel):
    model_config = _examples(
        {
            "actions": [
                {
                    "id": 1,
                    "at": TIME,
                    "subject": "alice",
                    "roles": ["ops-admin"],
                    "action": "replay",
                    "target": "backoffice-changes-dlq",
                    "params": {"dry_run": True},
                    "outcome": "ok",
                    "result": {"matched": 1, "moved": 0},
                    "request_id": EXAMPLE_REQUEST_ID,
                    "source_ip": "127.0.0.1",
                }
            ]
        }
    )
    actions: list[AuditEntry]
