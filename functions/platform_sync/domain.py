"""platform_sync's rules, free of I/O: task types, scheduler states, job ids, outcomes.

Nothing here touches the database, AWS or the network, so the API, the dispatcher and the
worker share one definition of each rule and unit tests cover them without sockets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

TaskType = Literal["sync", "valid"]
TASK_TYPES: tuple[TaskType, ...] = ("sync", "valid")
SchedulerState = Literal["running", "paused", "stopped"]
Action = Literal["start", "pause", "resume", "stop"]
JobStatus = Literal["queued", "running", "retrying", "succeeded", "failed", "canceled"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "retrying", "succeeded", "failed", "canceled")
OPEN_STATUSES: tuple[str, ...] = ("queued", "running", "retrying")
#: what one call to a platform ended as (``job_attempts.outcome``)
Outcome = Literal["succeeded", "failed", "timed_out", "unavailable", "server_error", "refused"]
RETRIED_OUTCOMES = frozenset({"timed_out", "unavailable", "server_error"})

OPERATOR_ROLE = "platform-operator"
VIEWER_ROLE = "platform-viewer"

#: the queue's maxReceiveCount (catalog): a retry policy never asks for more attempts
MAX_ATTEMPTS = 3
MAX_CONNECT_TIMEOUT_S = 10.0
MAX_READ_TIMEOUT_S = 30.0

JOB_ID = r"^(sync|valid)-[0-9]{1,19}-([0-9]{8}T[0-9]{4}Z|run-[0-9a-f]{32})$"
_JOB_ID = re.compile(JOB_ID)


class TransitionRefused(Exception):
    """A control action that the current scheduler state does not allow (409)."""


def transition(state: SchedulerState, action: Action) -> SchedulerState | None:
    """The state after ``action``; ``None`` when nothing changes; ``TransitionRefused`` if not allowed.

    * ``start``: from any state to running (the only way out of ``stopped``);
    * ``pause``: running → paused (already paused: no change; stopped: refused);
    * ``resume``: paused → running (running: no change; stopped: refused — use start);
    * ``stop``: any → stopped (queued jobs are canceled by the caller).
    """
    if action == "start":
        return None if state == "running" else "running"
    if action == "pause":
        if state == "stopped":
            raise TransitionRefused("the task type is stopped: start it first")
        return None if state == "paused" else "paused"
    if action == "resume":
        if state == "stopped":
            raise TransitionRefused("the task type is stopped: only start brings it back")
        return None if state == "running" else "running"
    if action == "stop":
        return None if state == "stopped" else "stopped"
    raise ValueError(f"unknown action {action!r}")


def rule_should_be_enabled(state: str, enabled: bool) -> bool:
    """A task type's EventBridge rule fires only while it is running and enabled."""
    return enabled and state == "running"


def minute_of(when: datetime) -> datetime:
    """The scheduled minute a tick at ``when`` stands for (UTC, seconds dropped)."""
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def scheduled_job_id(task_type: str, platform_id: int, minute: datetime) -> str:
    """The deterministic id of the scheduled job (task type, platform, minute)."""
    return f"{task_type}-{platform_id}-{minute_of(minute):%Y%m%dT%H%MZ}"


def manual_job_id(task_type: str, platform_id: int, token: str) -> str:
    return f"{task_type}-{platform_id}-run-{token}"


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id))


def is_due(minute: datetime, interval_minutes: int) -> bool:
    """Whether a tick for ``minute`` dispatches at this interval: minutes since the epoch
    divisible by the interval, so ticks agree on the grid whoever runs them, late or twice."""
    epoch_minutes = int(minute_of(minute).timestamp() // 60)
    return epoch_minutes % interval_minutes == 0


def next_run(after: datetime, interval_minutes: int) -> datetime:
    """The next due minute strictly after ``after``."""
    minute = minute_of(after) + timedelta(minutes=1)
    epoch = int(minute.timestamp() // 60)
    step = (-epoch) % interval_minutes
    return minute + timedelta(minutes=step)


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    retry: bool
    summary: str | None = None
    error: str | None = None


def classify_status(status: int) -> Classified:
    """An HTTP answer of a platform: 2xx succeeded, 4xx failed, 5xx retried (seed: troubleshooting)."""
    if 200 <= status < 300:
        return Classified("succeeded", False)
    if 300 <= status < 400:
        return Classified("failed", False, error=f"HTTP {status}: redirects are not followed")
    if status == 429:
        return Classified("server_error", True, error="HTTP 429: throttled")
    if 400 <= status < 500:
        return Classified("failed", False, error=f"HTTP {status}")
    return Classified("server_error", True, error=f"HTTP {status}")


def retry_delay_s(backoff_s: int, attempt: int) -> int:
    """Exponential backoff before attempt ``attempt + 1`` (1-based ``attempt`` just failed)."""
    return min(900, backoff_s * 2 ** max(0, attempt - 1))


def summarize(text: str, limit: int = 200) -> str | None:
    """A response body as one short line (kept in ``job_attempts.summary``)."""
    line = " ".join(text.split())
    if not line:
        return None
    return line if len(line) <= limit else line[: limit - 1] + "…"
