"""Outbound HTTP: one client factory, retries with full jitter, a shared rate limit.

Every upstream client (SP-API, Slack webhooks, Apify) is an ``httpx.Client`` from
``make_client``, created once per container by its caller. The layers, inside out::

    httpx.Client(timeout always set)
      └─ RetryTransport(policy, limiter)      retries, backoff, Retry-After, deadline
           └─ inner transport                 HTTPTransport, or MockTransport/ASGI/WSGI in tests

Retries live in the transport, so every attempt goes through the same code path as
the first and callers see one response. What is retried:

* statuses in ``RetryPolicy.retry_statuses`` and timeouts/network errors, for the
  idempotent methods of ``retry_methods`` only (a client may opt POST in);
* connect errors, connect and pool timeouts for every method: the request never
  left this process, so repeating it cannot duplicate an effect.

The delay before retry ``n`` (0-based) is full jitter, ``uniform(0, min(cap, base·2ⁿ))``,
raised to the upstream's ``Retry-After`` when it sends one. A ``Retry-After`` above
``max_retry_after_s`` is not waited for: that response is returned at once so the
caller can fail fast or defer the work (``raise_for_upstream`` turns a 429 into
``RateLimited`` carrying the delay). With ``deadline_s`` no sleep and no attempt's
timeouts reach past the budget. Each retry is logged at warning level (method, URL
without query and with opaque path tokens masked, status or exception type, attempt,
delay; never headers or bodies) and counted as the ``UpstreamRetry`` metric.

``TokenBucket`` keeps an upstream's quota in Redis so that every concurrent Lambda
shares it; the refill-and-take step is one Lua script, hence atomic. The current time
comes from the caller's clock rather than Redis ``TIME``: tests drive it with a fake
clock, and Lambda hosts are NTP-synchronised (the script never lets the stored
timestamp go backwards, so a slightly slow clock cannot refill twice). If Redis is
unreachable the bucket fails open: the upstream's own 429s and the retries still
protect it, and an outage of the cache never stops the work.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .errors import RateLimited, UpstreamError
from .observability import logger, metric

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_METHODS",
    "Limiter",
    "RetryPolicy",
    "RetryTransport",
    "TokenBucket",
    "make_client",
    "parse_retry_after",
    "raise_for_upstream",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

# Raised before any byte of the request was sent: safe to repeat for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Our own mistakes, not transient: never retried.
_NOT_RETRIED = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# Long opaque path segments are credentials (Slack webhook tokens): never logged.
_OPAQUE_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_-]{20,}(?=/|$)")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a client retries."""

    max_attempts: int = 4
    base_s: float = 0.25
    cap_s: float = 20.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_methods: frozenset[str] = field(default=IDEMPOTENT_METHODS)
    #: a longer ``Retry-After`` is not waited for; the response is returned as is
    max_retry_after_s: float = 60.0
    #: total time budget across attempts (sleeps included), from the first attempt
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        object.__setattr__(self, "retry_methods", frozenset(m.upper() for m in self.retry_methods))
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full-jitter delay before retry number ``retry`` (0-based)."""
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**retry))


class Limiter(Protocol):
    """What ``RetryTransport`` asks before every attempt (``TokenBucket`` is one)."""

    def acquire(self, n: int = 1, timeout_s: float | None = None) -> float: ...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _loggable_url(url: httpx.URL) -> str:
    bare = url.copy_with(query=None, fragment=None, userinfo=b"")
    return _OPAQUE_SEGMENT.sub("***", str(bare))


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport with ``policy``'s retries and an optional shared rate limit."""

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        *,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner if inner is not None else httpx.HTTPTransport()
        self.policy = policy if policy is not None else RetryPolicy()
        self.limiter = limiter
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        # Wall clock: an HTTP-date Retry-After is absolute time.
        self._clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        idempotent = request.method.upper() in policy.retry_methods
        deadline = None if policy.deadline_s is None else self._clock() + policy.deadline_s
        if policy.max_attempts > 1:
            request.read()  # a streamed body must be replayable
        attempt = 0
        while True:
            if self.limiter is not None:
                budget = None if deadline is None else max(0.0, deadline - self._clock())
                self.limiter.acquire(1, timeout_s=budget)
            if deadline is not None:
                _cap_timeouts(request, deadline - self._clock())
            attempt += 1
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            retry_after: float | None = None
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                if isinstance(exc, _NOT_RETRIED) or not (idempotent or isinstance(exc, _NOT_SENT)):
                    raise
                error = exc
            if response is not None:
                if not idempotent or response.status_code not in policy.retry_statuses:
                    return response
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
                if retry_after is not None and retry_after > policy.max_retry_after_s:
                    return response
            delay = policy.backoff_s(attempt - 1, self._rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            out_of_time = deadline is not None and self._clock() + delay >= deadline
            if attempt >= policy.max_attempts or out_of_time:
                if error is not None:
                    raise error
                assert response is not None
                return response
            logger.warning(
                "retrying upstream request",
                extra={
                    "method": request.method,
                    "url": _loggable_url(request.url),
                    "status": response.status_code if response is not None else None,
                    "error": type(error).__name__ if error is not None else None,
                    "attempt": attempt,
                    "delay_s": round(delay, 3),
                },
            )
            metric("UpstreamRetry")
            if response is not None:
                response.close()
            self._sleep(delay)

    def close(self) -> None:
        self.inner.close()


def _cap_timeouts(request: httpx.Request, remaining: float) -> None:
    """Shrink this attempt's timeouts so that it cannot outlive the deadline."""
    timeouts = request.extensions.get("timeout")
    remaining = max(remaining, 0.001)
    capped = {k: remaining if v is None else min(v, remaining) for k, v in (timeouts or {}).items()}
    request.extensions["timeout"] = capped or {k: remaining for k in ("connect", "read", "write", "pool")}


# ------------------------------------------------------------------ token bucket

# KEYS[1] = bucket; ARGV = rate/s, burst, now, n, ttl s.
# Returns "0" when n tokens were taken, else the seconds until n are available.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= n - 1e-9 then
  tokens = math.max(0, tokens - n)
else
  wait = (n - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return string.format('%.17g', wait)
"""


class TokenBucket:
    """A token bucket in Redis shared by every container using ``key``.

    ``rate_per_s`` tokens are added per second up to ``burst``. The bucket is
    created full and vanishes (TTL) after ``max(60, 2·burst/rate)`` idle seconds.
    Rate and burst are this object's: a bucket object that learns a new rate
    (``set_rate``) applies it to the shared tokens from then on.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        key: str,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self._redis = redis_client
        self._script = redis_client.register_script(_BUCKET_LUA)
        self._clock = clock
        self._sleep = sleep
        self.rate_per_s = 0.0
        self.burst = 0
        self._apply(rate_per_s, burst)

    def _apply(self, rate_per_s: float, burst: int) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError("rate_per_s must be a positive number")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)

    def _eval(self, n: int) -> float:
        import redis as redis_lib

        ttl = max(60, math.ceil(2 * self.burst / self.rate_per_s))
        args = [repr(self.rate_per_s), self.burst, repr(float(self._clock())), n, ttl]
        try:
            raw = self._script(keys=[self.key], args=args)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
            logger.warning("rate limiter unreachable, not throttling", extra={"error": type(exc).__name__})
            return 0.0
        return float(raw)

    def try_acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens: 0.0 when granted, else the seconds until they will be there."""
        if not 1 <= n <= self.burst:
            raise ValueError(f"n must be between 1 and burst ({self.burst})")
        return self._eval(n)

    def acquire(self, n: int = 1, timeout_s: float | None = None) -> float:
        """Wait until ``n`` tokens are taken; returns the seconds waited.

        Raises ``RateLimited`` (with ``retry_after_s``) instead of waiting past ``timeout_s``.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire(n)
            if wait <= 0:
                return waited
            if timeout_s is not None and waited + wait > timeout_s:
                raise RateLimited(f"local rate limit {self.key!r} exhausted", retry_after_s=wait)
            self._sleep(wait)
            waited += wait

    def set_rate(self, rate_per_s: float, burst: int | None = None) -> None:
        """Adopt a new rate (e.g. SP-API's ``x-amzn-RateLimit-Limit``) and optionally burst."""
        if rate_per_s == self.rate_per_s and (burst is None or burst == self.burst):
            return
        self._eval(0)  # settle the refill so far at the old rate
        self._apply(rate_per_s, self.burst if burst is None else burst)


# ------------------------------------------------------------------------ client


class RenewableTransport(httpx.BaseTransport):
    """The network transport of a ``make_client`` client, replaceable after a SnapStart restore
    (``renew``: the old connections are closed, the next request opens its own)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def renew(self) -> None:
        old, self.inner = self.inner, httpx.HTTPTransport()
        old.close()

    def close(self) -> None:
        self.inner.close()


#: every client make_client built, with its renewable transport and retry layer (weakly held)
_clients: weakref.WeakKeyDictionary[httpx.Client, tuple[RenewableTransport | None, RetryTransport | None]] = (
    weakref.WeakKeyDictionary()
)


def renew_clients() -> int:
    """After a SnapStart restore: new connections and new jitter for every client made here."""
    renewed = 0
    for network, retry in list(_clients.values()):
        if network is not None:
            network.renew()
        if retry is not None:
            retry._rng.seed()
        renewed += 1
    return renewed


def make_client(
    *,
    base_url: str | httpx.URL = "",
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = RetryPolicy(),
    limiter: Limiter | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Client:
    """The one way to build an upstream client (create it once per container).

    ``transport`` replaces the network (``httpx.MockTransport``, ASGI/WSGI transports);
    it is wrapped by ``RetryTransport`` when ``retry`` is set or a ``limiter`` is given.
    ``sleep`` waits between attempts (a caller with a deadline passes one that refuses
    to sleep past it).
    Every timeout must be set: a Lambda must never wait on a socket forever.
    """
    timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    if None in timeout.as_dict().values():
        raise ValueError("every timeout (connect, read, write, pool) must be set")
    network = RenewableTransport() if transport is None else None
    inner: httpx.BaseTransport = transport if transport is not None else network
    retrying = None
    if retry is not None or limiter is not None:
        inner = retrying = RetryTransport(
            inner, retry or RetryPolicy(max_attempts=1), limiter=limiter, sleep=sleep
        )
    client = httpx.Client(
        base_url=base_url,
        timeout=timeout,
        headers=dict(headers or {}),
        transport=inner,
        event_hooks={k: list(v) for k, v in (event_hooks or {}).items()},
    )
    _clients[client] = (network, retrying)
    return client


# ------------------------------------------------------------------------ errors


def _summary(response: httpx.Response) -> str:
    """The upstream's short error code/message, or its short text body, on one line."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return ""
    if not content:
        return ""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts: Iterable[Any]
        errors, error = body.get("errors"), body.get("error")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            parts = (errors[0].get("code"), errors[0].get("message"))  # SP-API
        elif isinstance(error, dict):
            parts = (error.get("type") or error.get("code"), error.get("message"))  # Apify
        elif isinstance(error, str):
            parts = (error,)  # Slack Web API
        else:
            parts = (body.get("code"), body.get("message"))
        text = " ".join(": ".join(str(p) for p in parts if p not in (None, "")).split())
        return text if len(text) <= 200 else text[:199] + "…"
    text = " ".join(response.text.split()) if body is None else ""
    return text if len(text) < 200 else ""


def raise_for_upstream(response: httpx.Response, service: str) -> None:
    """Raise for a non-2xx answer: ``RateLimited`` for 429, else ``UpstreamError`` (502).

    The detail names the service and status plus the upstream's short error; never
    the URL, headers or anything sent.
    """
    if response.is_success:
        return
    status = response.status_code
    summary = _summary(response)
    detail = f"{service} answered HTTP {status}" + (f": {summary}" if summary else "")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        raise RateLimited(detail, retry_after_s=retry_after)
    raise UpstreamError(detail)
