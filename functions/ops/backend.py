"""The ops API's one interface to the running application, with two backends.

``backend()`` is what every ``/ops/…`` console route talks to:

* **local** — ``localcloud.ops.LocalBackend``, registered by ``LocalCloud.start`` through
  ``use(...)``: the ops-api handler runs in the local cloud's own process, so it reads the
  queue engine, the scheduler, the journal and the invocation details directly (no HTTP
  round trip, no second source of truth). The local cloud unregisters it when it stops.
* **aws** — ``functions.ops.aws_backend.AwsBackend``: SQS, EventBridge, Lambda, CloudWatch
  metrics (``GetMetricData``) and Logs Insights, through the container's boto3 clients, for
  the resources of this stack only (names ``<OPSDECK_RESOURCE_PREFIX><catalog name>``).

Both return the same JSON-ready shapes (documented on ``OpsBackend``); the DLQ replay of both
is ``opsdeck.replay.replay`` — the code the ``opsdeck queues replay`` CLI runs.

Extension point: a capability may show its own state beside its schedules (platform_sync:
the scheduler state per task type) with a module ``functions/<capability>/ops.py`` that
defines ``schedule_state(schedule_name) -> Mapping[str, Any] | None``; whatever it returns is
the schedule's ``capability_state`` in ``GET /ops/schedules`` and in the Schedules view.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from functions import catalog
from opsdeck.errors import OpsdeckError

log = logging.getLogger("opsdeck.ops")

#: the console's own reads: the page polls them, ``hide_console`` keeps them out of the journal view
CONSOLE_READ_ROUTES = frozenset(
    {
        "GET /ops/console",
        "GET /ops/console/{name}",
        "GET /ops/whoami",
        "GET /ops/overview",
        "GET /ops/queues",
        "GET /ops/queues/{queue}/messages",
        "GET /ops/replays/{replay_id}",
        "GET /ops/schedules",
        "GET /ops/invocations",
        "GET /ops/invocations/{request_id}",
        "GET /ops/series",
        "GET /ops/audit",
    }
)

#: outcomes that count as errors (Lambda's ``Errors`` metric: the function failed)
ERROR_OUTCOMES = frozenset({"error", "timeout", "invalid-response", "throttled"})


class OpsBackend(Protocol):
    """What the console needs from a running opsdeck. Names are catalog (logical) names."""

    mode: str  # "local" | "aws"

    def function_stats(self, window_s: int) -> dict[str, dict[str, Any]]:
        """function → ``{"invocations", "errors", "p95_ms"}`` over the last ``window_s``."""

    def queues(self) -> list[dict[str, Any]]:
        """Every catalog queue and DLQ: ``name, queue, dlq, source, consumer, visible, in_flight,
        oldest_age_s``."""

    def peek(self, queue: str, limit: int) -> list[dict[str, Any]]:
        """Messages (``message_id, body, attributes, message_attributes, receive_count, state,
        failure``) without consuming them."""

    def replay(self, dlq: str, **options: Any) -> dict[str, Any]:
        """``opsdeck.replay.replay`` on ``dlq`` (options: to, filter, limit, dry_run, rate, and
        ``progress``, the callback after a batch, and ``time_budget_s``)."""

    def schedules(self) -> list[dict[str, Any]]:
        """Every catalog schedule: ``name, rule, expression, state, function, last_fire, next_fire``."""

    def fire(self, schedule: str) -> dict[str, Any]:
        """Invoke the schedule's function now, asynchronously, with the rule's event shape."""

    def set_enabled(self, schedule: str, enabled: bool) -> dict[str, Any]:
        """EnableRule / DisableRule; returns the schedule as ``schedules()`` shows it."""

    def invocations(
        self,
        *,
        function: str | None,
        trigger: str | None,
        outcome: str | None,
        limit: int,
        hide_console: bool = False,
    ) -> list[dict[str, Any]]:
        """The newest invocations first (the local journal); ``hide_console`` leaves out the
        console's own reads (``CONSOLE_READ_ROUTES``)."""

    def invocation(self, request_id: str, function: str | None) -> dict[str, Any]:
        """One invocation: its journal entry, ``event``, ``result`` and ``logs``."""

    def reinvoke(self, request_id: str) -> dict[str, Any]:
        """Invoke the function again with the same event."""

    def series(self, minutes: int) -> dict[str, Any]:
        """Per-minute ``invocations``/``errors`` per function and ``queue_depth`` over time."""


class NotAvailable(OpsdeckError):
    """This backend cannot do that (e.g. the invocation journal on AWS): 501."""

    status, slug, title = 501, "not-available", "Not available here"


_local: OpsBackend | None = None
_aws: OpsBackend | None = None


def use(local: OpsBackend | None) -> None:
    """Register (or, with None, remove) the local cloud's in-process backend."""
    global _local
    _local = local


def backend() -> OpsBackend:
    global _aws
    if _local is not None:
        return _local
    if _aws is None:
        from functions.ops.aws_backend import AwsBackend

        _aws = AwsBackend()
    return _aws


def reset() -> None:
    """Forget the AWS backend (its clients and names); tests."""
    global _aws
    _aws = None


# ------------------------------------------------------------------ catalog views


def queue_entries(functions: tuple[catalog.Function, ...] = catalog.FUNCTIONS) -> list[dict[str, Any]]:
    """Each catalog queue and its DLQ: logical name, SQS name, consumer, FIFO, source."""
    out = []
    for q, f in catalog.queues_of(functions):
        out.append({"name": q.name, "queue": q.queue_name, "dlq": False, "source": None, "consumer": f.name})
        out.append(
            {"name": q.name + "-dlq", "queue": q.dlq_name, "dlq": True, "source": q.name, "consumer": f.name}
        )
    return out


def queue_entry(name: str, functions: tuple[catalog.Function, ...] = catalog.FUNCTIONS) -> dict[str, Any]:
    from opsdeck.errors import NotFound

    for entry in queue_entries(functions):
        if name in (entry["name"], entry["queue"]):
            return entry
    raise NotFound(f"unknown queue {name!r}")


def schedule_entry(name: str) -> tuple[catalog.Schedule, catalog.Function]:
    from opsdeck.errors import NotFound

    found = catalog.schedules().get(name)
    if found is None:
        raise NotFound(f"unknown schedule {name!r}")
    return found


def capability_state(function: catalog.Function, schedule: str) -> Mapping[str, Any] | None:
    """The extension point: ``functions/<capability>/ops.py: schedule_state(schedule)``."""
    module_name = f"functions.{function.capability}.ops"
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except (ModuleNotFoundError, ValueError):
        return None
    provider = getattr(importlib.import_module(module_name), "schedule_state", None)
    if not callable(provider):
        return None
    try:
        state = provider(schedule)
    except Exception as exc:  # a capability's state must not take the Schedules view down
        log.warning("schedule_state failed", extra={"schedule": schedule, "error": type(exc).__name__})
        return {"error": f"{type(exc).__name__}"}
    return dict(state) if state is not None else None


def failure_reason(lines: list[str], message_id: str) -> str | None:
    """The reason the consumer logged for ``message_id`` (``opsdeck.queue``: "record failed")."""
    import json

    for line in lines:
        if message_id not in line:
            continue
        try:
            record = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message_id") == message_id and record.get("reason"):
            return str(record["reason"])
    return None


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, -(-95 * len(ordered) // 100) - 1))  # nearest rank
    return round(ordered[index], 3)
