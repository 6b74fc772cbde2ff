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

Under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``) ``entry`` also registers the
layer's before-snapshot and after-restore hooks with the runtime (``opsdeck.snapstart``).
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
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
    """Add an EMF metric to this invocation's metric set."""
    metrics.add_metric(name=name, unit=unit, value=value)


def entry(kind: Literal["http", "schedule", "queue", "deploy", "manual"]) -> Callable[[Callable], Callable]:
    """Decorate a Lambda handler of trigger ``kind``."""

    def decorate(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        from . import snapstart

        if snapstart.enabled():  # a SnapStart init: warm before the snapshot, renew after restores
            snapstart.install()

        @functools.wraps(handler)
        def with_service(event: Any, context: Any) -> Any:
            # One function per process on AWS; the local cloud runs many in one process, so the
            # capability is read per invocation rather than fixed when this module was imported.
            service = os.environ.get("POWERTOOLS_SERVICE_NAME")
            if service:
                logger.thread_safe_append_keys(service=service)
                metrics.service = service
            return handler(event, context)

        wrapped: Callable[[Any, Any], Any] = with_service
        if tracing_enabled():
            wrapped = tracer().capture_lambda_handler(wrapped, capture_response=False)
        wrapped = logger.inject_lambda_context(
            wrapped, correlation_id_path=_CORRELATION[kind], clear_state=True
        )

        initialised = False

        @functools.wraps(handler)
        def lambda_handler(event: Any, context: Any) -> Any:
            nonlocal initialised
            try:
                return wrapped(event, context)
            finally:
                if metrics.metric_set:
                    metrics.add_dimension(
                        name="function", value=os.environ.get("OPSDECK_FUNCTION", logger.service)
                    )
                    metrics.flush_metrics()
                if not initialised:
                    initialised = True
                    gc.freeze()

        return lambda_handler

    return decorate
