"""Response bodies of the ops console's API, as the OpenAPI document states them (with examples).

Free-form parts stay free-form on purpose: a function's trigger and resources (``describe``), an
invocation's event and result, a capability's own schedule state, message attributes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_REQUEST_ID = "00000000-0000-4000-8000-00000000c0de"
#: the replay the contract hook runs (``functions.ops.demo``): ``GET /ops/replays/{replay_id}``'s example
EXAMPLE_REPLAY_ID = "00000000-0000-4000-8000-0000000e0a1d"
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
            "replay_id": "0d5e3f5c-8d3b-4f7e-9a57-3a3f4f0e6c21",
        }
    )
    matched: int
    moved: int
    method: Literal["move-task", "receive-send-delete"]
    scanned: int | None = None
    status: str | None = Field(None, description="move task: COMPLETED, RUNNING, FAILED, …")
    task: str | None = None
    failure: str | None = None
    failed: int | None = Field(
        None, description="receive-send-delete: SQS refused to send them (still in the DLQ)"
    )
    stopped: Literal["time-budget"] | None = Field(
        None,
        description="the replay stopped before the end of the DLQ to answer within the API's time limit: "
        "what it did not move is visible in the DLQ again; replay again for the rest",
    )
    message_ids: list[str] | None = Field(
        None, description="receive-send-delete: the ids moved (dry run: that would move), the first 100"
    )
    audit_id: int
    replay_id: str = Field(description="its progress: GET /ops/replays/{replay_id}")


class ReplayProgress(BaseModel):
    """A replay as it goes (``opsdeck.replay``'s progress reports), then its outcome."""

    model_config = _examples(
        {
            "replay_id": EXAMPLE_REPLAY_ID,
            "dlq": "backoffice-changes-dlq",
            "params": {"filter": None, "limit": None, "dry_run": False, "rate": "2/s", "to": None},
            "audit_id": 7,
            "started_at": TIME,
            "updated_at": TIME,
            "method": "receive-send-delete",
            "dry_run": False,
            "total": 6,
            "examined": 6,
            "matched": 6,
            "moved": 2,
            "skipped": 4,
            "failed": 0,
            "message_ids": ["b49b4534-c985-46f5-b1ea-a81e65bc7e91", "5b0f4cc4-7f4e-4a54-a5ba-1c3e0e3b8c7a"],
            "stopped": None,
            "done": False,
            "stalled": False,
            "outcome": None,
            "error": None,
            "result": None,
        }
    )
    replay_id: str
    dlq: str
    params: dict[str, Any] = Field(description="the options it was started with")
    audit_id: int = Field(description="who started it: ops.audit (GET /ops/audit)")
    started_at: str
    updated_at: str = Field(description="its last progress report")
    method: Literal["move-task", "receive-send-delete"] | None = Field(
        description="null before the first report"
    )
    dry_run: bool
    total: int = Field(description="the DLQ's approximate depth when it began")
    examined: int
    matched: int
    moved: int = Field(description="dry run: 0 (matched is what would move)")
    skipped: int = Field(
        description="examined, not moved: no match, past the limit, a dry run, or not yet sent"
    )
    failed: int = Field(description="SQS refused to send them: they stay in the DLQ")
    message_ids: list[str] = Field(
        description="the ids moved so far (dry run: that would move), the first 100"
    )
    stopped: Literal["time-budget"] | None
    done: bool
    stalled: bool = Field(description="not done and no report for a minute: the invocation running it ended")
    outcome: str | None = Field(description="ok, a problem type slug, or null while it runs")
    error: str | None = Field(description="why it failed")
    result: dict[str, Any] | None = Field(description="the POST's answer, once done with outcome ok")


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
