"""Loud about gaps: the catalog features the emulation implements, checked at start.

Every field of every catalog type is listed here with how the local cloud honours it.
``check(functions)`` raises ``UnsupportedFeature`` naming the first function that uses
anything else — a trigger kind or a field added to the catalog later, a field the local
cloud does not emulate set to a non-default value, an authorizer other than ``jwt``, a
schedule expression AWS would refuse — instead of silently ignoring it. Approximations
(things emulated with a known difference from AWS) are listed by ``notes(functions)``;
``opsdeck local up`` prints them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from localcloud import schedules
from localcloud.errors import UnsupportedFeature

#: class name → field → how the local cloud implements it
IMPLEMENTED: dict[str, dict[str, str]] = {
    "Function": {
        "name": "function name, ARN and log group",
        "capability": "POWERTOOLS_SERVICE_NAME; simulator and demo discovery",
        "handler": "imported lazily, once",
        "trigger": "see the trigger classes",
        "description": "shown by opsdeck functions",
        "memory_mb": "context.memory_limit_in_mb (not enforced)",
        "timeout_s": "remaining time in the context; longer runs end as timeouts",
        "database": "DATABASE_URL",
        "cache": "REDIS_URL",
        "sends_to": "<QUEUE>_QUEUE_URL of the local queue",
        "secrets": "<SECRET>_SECRET_ID of a Secrets Manager secret on the local endpoint",
        "controls_schedules": "<SCHEDULE>_RULE_NAME of the local EventBridge rule",
        "secret_prefixes": "<PREFIX>_SECRET_PREFIX = '<prefix>/' (local secrets have no stack prefix)",
        "invokes": "<FUNCTION>_FUNCTION_NAME; Lambda Invoke on the local endpoint",
        "operates_stack": "the ops console's local backend reads the local cloud in process (no IAM locally)",
        "buckets": "<BUCKET>_BUCKET_NAME of an S3 bucket on the local endpoint (moto, in memory)",
        "reserved_concurrency": "concurrent invocations capped; synchronous callers are throttled",
        "tracer": "POWERTOOLS_TRACE_DISABLED (traces are not collected locally)",
        "environment": "set on the function",
        "alarms": "CloudWatch alarms exist on AWS only (the metrics are logged as EMF lines)",
        "snap_start": "not emulated as a snapshot (functions start as a cold init); the layer's "
        "hooks are plain functions there (opsdeck.snapstart.simulate_restore)",
        "extras": "installed in the environment with every other extra (pip install -e .[dev]): "
        "locally every function can import them",
    },
    "Http": {"routes": "routes of the local HTTP API", "api": "all APIs share the one local port"},
    "Route": {
        "method": "route selection",
        "path": "route selection, path parameters",
        "authorizer": "JWT authorizer (None or 'jwt')",
        "scopes": "authorization scopes of the JWT authorizer",
    },
    "Schedule": {
        "expression": "cron(…) and rate(…) in AWS syntax",
        "input": "the scheduled event's detail",
        "name": "rule opsdeck-local-<name>",
        "enabled": "rule state",
        "stalled_after_minutes": "CloudWatch alarm on AWS only",
    },
    "Queue": {
        "name": "queue and <name>-dlq",
        "fifo": "FIFO ordering per MessageGroupId, deduplication",
        "batch_size": "event source mapping batch size",
        "batching_window_s": "event source mapping batching window",
        "visibility_timeout_s": "queue visibility timeout",
        "max_receive_count": "redrive to the DLQ",
        "max_concurrency": "concurrent batches of the mapping",
        "retention_s": "message retention",
    },
    "Deploy": {},
    "Manual": {},
}
AUTHORIZERS = (None, "jwt")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _unimplemented_fields(obj: Any, where: str) -> list[str]:
    kind = type(obj).__name__
    base = next((c.__name__ for c in type(obj).__mro__ if c.__name__ in IMPLEMENTED), None)
    if base is None or not dataclasses.is_dataclass(obj):
        return [f"{where}: {kind} is not emulated by the local cloud"]
    known = IMPLEMENTED[base]
    problems = []
    for f in dataclasses.fields(obj):
        if f.name in known:
            continue
        value, default = getattr(obj, f.name), _default(f)
        if default is dataclasses.MISSING or value != default:
            problems.append(f"{where}: {kind}.{f.name}={value!r} is not emulated by the local cloud")
    return problems


def problems(functions: Iterable[Any]) -> list[str]:
    """Every unsupported use, one line each (empty when everything is emulated)."""
    out: list[str] = []
    for function in functions:
        where = f"function {function.name!r}"
        out += _unimplemented_fields(function, where)
        trigger = function.trigger
        out += _unimplemented_fields(trigger, where)
        kind = next((c.__name__ for c in type(trigger).__mro__ if c.__name__ in IMPLEMENTED), None)
        if kind == "Http":
            for route in trigger.routes:
                out += _unimplemented_fields(route, f"{where} route {route.key!r}")
                if route.authorizer not in AUTHORIZERS:
                    out.append(f"{where}: authorizer {route.authorizer!r} is not emulated (only 'jwt')")
        elif kind == "Schedule":
            try:
                schedules.parse(trigger.expression)
            except schedules.ScheduleExpressionError as exc:
                out.append(f"{where}: {exc}")
    return out


def check(functions: Iterable[Any]) -> None:
    found = problems(functions)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsupportedFeature(found[0] + more)


def notes(functions: Iterable[Any]) -> list[str]:
    """Approximations in use, for the start banner."""
    functions = list(functions)
    out = []
    if any(f.tracer for f in functions):
        out.append("tracer: X-Ray traces are not collected locally")
    if any(f.reserved_concurrency for f in functions):
        out.append("reserved_concurrency: enforced per process")
    if any(f.buckets for f in functions):
        out.append("buckets: moto S3 in memory; presigned signatures and POST policies are not verified")
    return out
