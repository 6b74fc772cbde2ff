"""Pacing of upstream calls: run deadlines and per-operation shared token buckets.

A sync run has a deadline (the Lambda's remaining time minus a margin, or the HTTP
API's budget). Inside ``deadline_scope(deadline)`` every wait on the way to an upstream
— a quota token, a retry's backoff or ``Retry-After`` — checks it first and raises
``DeadlineReached`` instead of sleeping past it; attempt timeouts shrink to the time left.
The sync turns that signal into a partial or deferred run, never into a half write.

``OperationLimiter`` is the single ``limiter`` a ``RetryTransport`` accepts, yet picks the
Redis ``TokenBucket`` of the operation in flight (``operation_scope("getOrders")``, a
context variable), so every attempt — retries included — is paid from the right quota.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opsdeck.errors import RateLimited
from opsdeck.observability import logger

if TYPE_CHECKING:  # the HTTP API imports Deadline from here; httpx loads only where upstreams are called
    import httpx

    from opsdeck.http import TokenBucket


class DeadlineReached(Exception):
    """Waiting (for a quota token or a retry) would pass the run's deadline."""


class Deadline:
    """A point on the monotonic clock (``None``: no deadline)."""

    def __init__(self, at: float | None) -> None:
        self.at = at

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds)

    def remaining(self) -> float:
        return math.inf if self.at is None else self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0


_operation: ContextVar[str | None] = ContextVar("upstream_operation", default=None)
_deadline: ContextVar[Deadline | None] = ContextVar("upstream_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Every upstream wait inside this block respects ``deadline``."""
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def operation_scope(operation: str) -> Iterator[None]:
    """Requests inside this block are paid from ``operation``'s bucket."""
    token = _operation.set(operation)
    try:
        yield
    finally:
        _operation.reset(token)


def current_operation() -> str | None:
    return _operation.get()


def current_deadline() -> Deadline:
    return _deadline.get() or Deadline(None)


def deadline_sleep(seconds: float) -> None:
    """RetryTransport's sleep: refuses to sleep past the run's deadline."""
    if seconds > current_deadline().remaining():
        raise DeadlineReached(f"a retry would wait {seconds:.1f} s, past the run's deadline")
    time.sleep(seconds)


def request_timeout(default: httpx.Timeout | None = None) -> httpx.Timeout:
    """``default`` (the layer's ``DEFAULT_TIMEOUT``) shrunk to the time left before the deadline."""
    import httpx

    from opsdeck.http import DEFAULT_TIMEOUT

    default = default or DEFAULT_TIMEOUT
    left = current_deadline().remaining()
    if left == math.inf:
        return default
    if left <= 0:
        raise DeadlineReached("the run's deadline has passed")
    return httpx.Timeout(
        connect=min(default.connect or left, left),
        read=min(default.read or left, left),
        write=min(default.write or left, left),
        pool=min(default.pool or left, left),
    )


class OperationLimiter:
    """RetryTransport's limiter: the bucket of the operation in flight."""

    def __init__(self, buckets: Mapping[str, TokenBucket], margin: float = 0.0) -> None:
        self.buckets = dict(buckets)
        self.margin = margin

    def acquire(self, n: int = 1, timeout_s: float | None = None) -> float:
        operation = _operation.get()
        bucket = self.buckets.get(operation or "")
        if bucket is None:
            return 0.0
        budget = min(math.inf if timeout_s is None else timeout_s, current_deadline().remaining())
        try:
            return bucket.acquire(n, timeout_s=None if budget == math.inf else max(0.0, budget))
        except RateLimited as exc:
            raise DeadlineReached(
                f"the {operation} quota frees a token in {exc.retry_after_s or 0:.1f} s, past the deadline"
            ) from None

    def adopt(self, operation: str, header: str) -> None:
        """Pace at the rate the upstream says applies (e.g. ``x-amzn-RateLimit-Limit``), minus the margin."""
        bucket = self.buckets.get(operation)
        try:
            rate = float(header)
        except ValueError:
            return
        if bucket is None or not (rate > 0 and math.isfinite(rate)):
            return
        effective = rate * (1 - self.margin)
        if not math.isclose(effective, bucket.rate_per_s, rel_tol=1e-6):
            logger.info("adopting upstream rate", extra={"operation": operation, "rate_per_s": rate})
            bucket.set_rate(effective)

    def drain(self, operation: str) -> None:
        """The upstream says the quota is spent: so is ours (shared by every container)."""
        bucket = self.buckets.get(operation)
        if bucket is None:
            return
        for _ in range(bucket.burst):
            if bucket.try_acquire(1) > 0:
                return


def lambda_deadline(context: object, *, reserve_s: float = 30.0) -> Deadline:
    """The invocation's deadline, keeping ``reserve_s`` (at most a fifth of it) to commit and report."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return Deadline(None)
    remaining = remaining_ms() / 1000
    return Deadline.after(max(0.0, remaining - min(reserve_s, remaining * 0.2)))
