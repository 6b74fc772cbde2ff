"""Logging, metrics and tracing, configured per function from the catalog.

The catalog becomes environment on every function (CDK and the local cloud set the
same variables): ``POWERTOOLS_SERVICE_NAME`` = capability, ``POWERTOOLS_METRICS_NAMESPACE``
= ``opsdeck``, ``OPSDECK_FUNCTION`` = function name, ``POWERTOOLS_TRACE_DISABLED`` unless
the catalog entry asks for the Powertools Tracer (its import costs ~300 ms of cold
start, so functions rely on Lambda's active X-Ray tracing unless they opt in).

``entry`` wraps every Lambda handler: Lambda context and a correlation id in every
log line, metrics flushed once per invocation (only when some were added), tracing
when enabled. After a handler's first invocation the objects alive then (modules,
clients, compiled schemas and statements, loaded by the import and the lazy first
use) are moved out of the cycle collector's sight with ``gc.freeze()``: later
collections scan only what invocations allocate, instead of the whole container
(~2 µs per change event in the backoffice consumer, BENCHMARKS.md). Objects are still
freed by reference counting; only cyclic garbage among the frozen ones would stay.

Many functions in one process (the local cloud runs invocations of different functions at
once) must not label each other's output: the Lambda context (function name, request id, cold
start) and the correlation id are also set as context-local log keys, which win over Powertools'
process-wide ones; metrics are collected per invocation and added to Powertools' process-wide
metric set only at its end, under a lock, with that function's dimension, then flushed. On AWS
(one invocation per process at a time) the output is the same as before.

Under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``) ``entry`` also registers the
layer's before-snapshot and after-restore hooks with the runtime (``opsdeck.snapstart``).
"""

from __future__ import annotations

import functools
import gc
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "opsdeck"), utc=True)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "opsdeck"))

_CORRELATION = {
    "http": correlation_paths.API_GATEWAY_HTTP,
    "schedule": correlation_paths.EVENT_BRIDGE,
    "deploy": "RequestId",
    "queue": None,  # a batch has no single id; records are logged with their messageId
    "manual": None,
}
#: the same paths as plain keys: read with dict lookups (no JMESPath per invocation)
_CORRELATION_KEYS = {kind: tuple(path.split(".")) if path else () for kind, path in _CORRELATION.items()}

#: this invocation's metrics, (name, unit, value), until its end (None outside an invocation)
_invocation_metrics: ContextVar[list[tuple[str, str, float]] | None] = ContextVar(
    "opsdeck_invocation_metrics", default=None
)
#: Powertools' metric set is process-wide: one invocation at a time adds, dimensions and flushes
_flush_lock = threading.Lock()

_tracer: Any = None


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in ("1", "true")


def tracer() -> Any:
    """The Powertools Tracer (imports aws-xray-sdk); only when tracing is enabled."""
    global _tracer
    if _tracer is None:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service=logger.service, disabled=not tracing_enabled())
    return _tracer


def metric(name: str, value: float = 1, unit: str = "Count") -> None:
    """Add an EMF metric to this invocation's metric set (flushed at the invocation's end)."""
    pending = _invocation_metrics.get()
    if pending is not None:
        pending.append((name, unit, value))
        return
    with _flush_lock:  # outside an invocation (a thread the handler started): as Powertools does
        metrics.add_metric(name=name, unit=unit, value=value)


def _correlation_id(event: Any, keys: tuple[str, ...]) -> Any:
    value = event
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _flush(pending: list[tuple[str, str, float]], service: str | None) -> None:
    with _flush_lock:
        for name, unit, value in pending:
            metrics.add_metric(name=name, unit=unit, value=value)
        if metrics.metric_set:
            if service:
                metrics.service = service
            metrics.add_dimension(name="function", value=os.environ.get("OPSDECK_FUNCTION", logger.service))
            metrics.flush_metrics()
            # with metrics disabled (locally) Powertools prints nothing and keeps the set: without
            # this the set grew by every invocation's metrics and each one warned on the dimension
            metrics.clear_metrics()


def entry(kind: Literal["http", "schedule", "queue", "deploy", "manual"]) -> Callable[[Callable], Callable]:
    """Decorate a Lambda handler of trigger ``kind``."""

    def decorate(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        from . import snapstart

        if snapstart.enabled():  # a SnapStart init: warm before the snapshot, renew after restores
            snapstart.install()

        correlation_keys = _CORRELATION_KEYS[kind]
        initialised = False

        @functools.wraps(handler)
        def with_service(event: Any, context: Any) -> Any:
            # One function per process on AWS; the local cloud runs many in one process, so the
            # capability and the Lambda context are context-local keys, set per invocation.
            keys: dict[str, Any] = {
                "cold_start": not initialised,
                "function_name": getattr(context, "function_name", None),
                "function_arn": getattr(context, "invoked_function_arn", None),
                "function_memory_size": getattr(context, "memory_limit_in_mb", None),
                "function_request_id": getattr(context, "aws_request_id", None),
                "correlation_id": _correlation_id(event, correlation_keys) if correlation_keys else None,
            }
            service = os.environ.get("POWERTOOLS_SERVICE_NAME")
            if service:
                keys["service"] = service
                metrics.service = service
            logger.thread_safe_append_keys(**keys)
            if correlation_keys:  # also process-wide, for threads the handler starts (as before)
                logger.set_correlation_id(keys["correlation_id"])
            return handler(event, context)

        wrapped: Callable[[Any, Any], Any] = with_service
        if tracing_enabled():
            wrapped = tracer().capture_lambda_handler(wrapped, capture_response=False)
        # the process-wide keys (function ARN, memory…), also seen by threads the handler starts
        wrapped = logger.inject_lambda_context(wrapped, clear_state=True)

        @functools.wraps(handler)
        def lambda_handler(event: Any, context: Any) -> Any:
            nonlocal initialised
            pending: list[tuple[str, str, float]] = []
            token = _invocation_metrics.set(pending)
            try:
                return wrapped(event, context)
            finally:
                _invocation_metrics.reset(token)
                if pending or metrics.metric_set:
                    _flush(pending, os.environ.get("POWERTOOLS_SERVICE_NAME"))
                if not initialised:
                    initialised = True
                    gc.freeze()

        return lambda_handler

    return decorate
