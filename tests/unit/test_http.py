"""opsdeck.http: retries, Retry-After, deadlines, the Redis token bucket, error mapping.

No network: upstreams are ``httpx.MockTransport`` handlers; time is a fake clock that
only moves when the code under test sleeps (or a handler says a request took time).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from opsdeck import http
from opsdeck.errors import RateLimited, UpstreamError
from opsdeck.http import RetryPolicy, RetryTransport, TokenBucket, make_client, raise_for_upstream
from opsdeck.observability import metrics

T0 = 1_800_000_000.0


class FakeTime:
    """A wall clock that advances only through ``sleep`` / ``advance``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Upstream:
    """A scripted upstream: each call pops the next answer (a status, a Response or an exception)."""

    def __init__(self, *answers: int | httpx.Response | type[Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type):
            raise answer("simulated", request=request)  # type: ignore[call-arg]
        if isinstance(answer, int):
            return httpx.Response(answer, json={"n": len(self.requests)})
        return answer


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture(autouse=True)
def _no_leftover_metrics() -> Iterator[None]:
    yield
    metrics.clear_metrics()


def client_for(
    upstream: Callable[[httpx.Request], httpx.Response],
    clock: FakeTime,
    policy: RetryPolicy | None = None,
    *,
    limiter: Any = None,
    seed: int = 7,
) -> httpx.Client:
    transport = RetryTransport(
        httpx.MockTransport(upstream),
        policy or RetryPolicy(),
        limiter=limiter,
        sleep=clock.sleep,
        rng=random.Random(seed),
        clock=clock,
    )
    return httpx.Client(base_url="https://upstream.test", transport=transport, timeout=5.0)


# ------------------------------------------------------------------------ retries


def test_503_is_retried_until_success(clock: FakeTime) -> None:
    upstream = Upstream(503, 503, 200)
    response = client_for(upstream, clock).get("/orders")
    assert response.status_code == 200
    assert response.json() == {"n": 3}
    assert len(upstream.requests) == 3
    assert len(clock.sleeps) == 2


def test_non_retryable_status_is_returned_at_once(clock: FakeTime) -> None:
    upstream = Upstream(404)
    assert client_for(upstream, clock).get("/x").status_code == 404
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


def test_last_response_returned_after_max_attempts(clock: FakeTime) -> None:
    upstream = Upstream(502)
    response = client_for(upstream, clock, RetryPolicy(max_attempts=3)).get("/x")
    assert response.status_code == 502
    assert response.json() == {"n": 3}
    assert len(upstream.requests) == 3
    assert len(clock.sleeps) == 2


def test_retry_after_seconds_is_waited_for(clock: FakeTime) -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "3"}), 200)
    response = client_for(upstream, clock).get("/x")
    assert response.status_code == 200
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] >= 3.0
    assert clock.sleeps[0] < 3.0 + 0.25 + 1e-9  # never more than max(Retry-After, jitter bound)


def test_retry_after_http_date_is_waited_for(clock: FakeTime) -> None:
    when = email.utils.formatdate(T0 + 7, usegmt=True)
    upstream = Upstream(httpx.Response(503, headers={"Retry-After": when}), 200)
    assert client_for(upstream, clock).get("/x").status_code == 200
    assert clock.sleeps == [pytest.approx(7.0)]


def test_retry_after_above_max_is_returned_without_waiting(clock: FakeTime) -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "120"}), 200)
    response = client_for(upstream, clock, RetryPolicy(max_retry_after_s=60)).get("/x")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


def test_post_not_retried_by_default(clock: FakeTime) -> None:
    upstream = Upstream(503, 200)
    response = client_for(upstream, clock).post("/feeds", json={"a": 1})
    assert response.status_code == 503
    assert len(upstream.requests) == 1


def test_post_retried_when_policy_allows(clock: FakeTime) -> None:
    upstream = Upstream(503, 200)
    policy = RetryPolicy(retry_methods=frozenset({"GET", "post"}))
    response = client_for(upstream, clock, policy).post("/feeds", json={"a": 1})
    assert response.status_code == 200
    assert [r.content for r in upstream.requests] == [b'{"a":1}', b'{"a":1}']


def test_streamed_body_is_replayed_on_retry(clock: FakeTime) -> None:
    upstream = Upstream(503, 200)
    body = iter([b"part1-", b"part2"])
    response = client_for(upstream, clock).put("/doc", content=body)
    assert response.status_code == 200
    assert [r.read() for r in upstream.requests] == [b"part1-part2", b"part1-part2"]


def test_timeouts_retried_then_last_exception_raised(clock: FakeTime) -> None:
    upstream = Upstream(httpx.ReadTimeout)
    with pytest.raises(httpx.ReadTimeout):
        client_for(upstream, clock).get("/slow")
    assert len(upstream.requests) == 4
    assert len(clock.sleeps) == 3


def test_timeout_then_success(clock: FakeTime) -> None:
    upstream = Upstream(httpx.ConnectError, httpx.ReadTimeout, 200)
    assert client_for(upstream, clock).get("/x").status_code == 200
    assert len(upstream.requests) == 3


def test_post_retried_on_connect_error_but_not_on_read_timeout(clock: FakeTime) -> None:
    # A connect error proves the request was never sent: safe for any method.
    upstream = Upstream(httpx.ConnectError, 201)
    assert client_for(upstream, clock).post("/feeds").status_code == 201
    assert len(upstream.requests) == 2
    # A read timeout may mean the upstream did act: not repeated for POST.
    upstream = Upstream(httpx.ReadTimeout, 201)
    with pytest.raises(httpx.ReadTimeout):
        client_for(upstream, clock).post("/feeds")
    assert len(upstream.requests) == 1


def test_unsupported_protocol_is_not_retried(clock: FakeTime) -> None:
    upstream = Upstream(httpx.UnsupportedProtocol)
    with pytest.raises(httpx.UnsupportedProtocol):
        client_for(upstream, clock).get("/x")
    assert len(upstream.requests) == 1


def test_full_jitter_delays_within_bounds(clock: FakeTime) -> None:
    policy = RetryPolicy(max_attempts=8, base_s=0.5, cap_s=4.0)
    upstream = Upstream(500)
    client_for(upstream, clock, policy, seed=1234).get("/x")
    bounds = [min(4.0, 0.5 * 2**n) for n in range(7)]
    assert bounds == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == 7
    assert all(0 <= d <= b for d, b in zip(clock.sleeps, bounds, strict=True))
    # Exactly the seeded full-jitter draws: deterministic.
    rng = random.Random(1234)
    assert clock.sleeps == [rng.uniform(0, b) for b in bounds]
    # Full jitter, not "equal" jitter: some delay falls below half its bound.
    assert any(d < b / 2 for d, b in zip(clock.sleeps, bounds, strict=True))


def test_deadline_stops_retries(clock: FakeTime) -> None:
    # Each attempt takes 0.4 s and the upstream asks for 0.5 s between attempts.
    def slow_503(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now - T0)
        clock.advance(0.4)
        return httpx.Response(503, headers={"Retry-After": "0.5"})

    calls: list[float] = []
    policy = RetryPolicy(max_attempts=10, base_s=0.01, deadline_s=2.0)
    response = client_for(slow_503, clock, policy).get("/x")
    assert response.status_code == 503
    # t=0 → 0.4, sleep 0.5 → t=0.9 → 1.3, sleep 0.5 → t=1.8 → 2.2; no sleep past 2.0
    assert calls == pytest.approx([0.0, 0.9, 1.8])
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_deadline_caps_attempt_timeouts(clock: FakeTime) -> None:
    seen: list[dict[str, float]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        clock.advance(1.0)
        return httpx.Response(500)

    policy = RetryPolicy(max_attempts=3, base_s=0.0, deadline_s=2.5)
    client_for(upstream, clock, policy).get("/x")
    assert seen[0] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert seen[1] == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}
    assert seen[2]["read"] == pytest.approx(0.5)


def test_limiter_consulted_before_every_attempt(clock: FakeTime) -> None:
    class CountingLimiter:
        def __init__(self) -> None:
            self.calls: list[tuple[int, float | None]] = []

        def acquire(self, n: int = 1, timeout_s: float | None = None) -> float:
            self.calls.append((n, timeout_s))
            return 0.0

    limiter = CountingLimiter()
    upstream = Upstream(503, 503, 200)
    client_for(upstream, clock, limiter=limiter).get("/x")
    assert limiter.calls == [(1, None), (1, None), (1, None)]


def test_token_bucket_limiter_paces_retries(clock: FakeTime, redis_client: Any) -> None:
    limiter = TokenBucket(redis_client, "rl:paced", rate_per_s=2.0, burst=1, clock=clock, sleep=clock.sleep)
    upstream = Upstream(503, 200)
    policy = RetryPolicy(base_s=0.0)  # jitter 0: only the bucket makes the retry wait
    assert client_for(upstream, clock, policy, limiter=limiter).get("/x").status_code == 200
    assert clock.sleeps == [0.0, pytest.approx(0.5)]


def test_retry_is_logged_without_query_headers_or_tokens(
    clock: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(http.logger, "warning", lambda msg, extra: logged.append((msg, extra)))
    upstream = Upstream(503, 200)
    client = client_for(upstream, clock)
    client.get(
        "/services/T0001/B0002/abcdefghijklmnopqrstuvwx",
        params={"token": "s3cret"},
        headers={"Authorization": "Bearer s3cret"},
    )
    assert len(logged) == 1
    message, extra = logged[0]
    assert message == "retrying upstream request"
    assert extra["method"] == "GET"
    assert extra["url"] == "https://upstream.test/services/T0001/B0002/***"
    assert extra["status"] == 503
    assert extra["error"] is None
    assert extra["attempt"] == 1
    assert extra["delay_s"] == round(clock.sleeps[0], 3)
    assert "s3cret" not in repr(logged)


# -------------------------------------------------------------------- make_client


def test_make_client_wraps_injected_transport_and_sets_timeouts() -> None:
    upstream = Upstream(503, 200)
    client = make_client(
        base_url="https://api.test",
        transport=httpx.MockTransport(upstream),
        retry=RetryPolicy(base_s=0.0),
        headers={"user-agent": "opsdeck"},
    )
    assert client.timeout.as_dict() == {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert client.get("/ping").status_code == 200
    assert len(upstream.requests) == 2
    assert str(upstream.requests[0].url) == "https://api.test/ping"
    assert upstream.requests[0].headers["user-agent"] == "opsdeck"


def test_make_client_without_retry_sends_once() -> None:
    upstream = Upstream(503, 200)
    client = make_client(transport=httpx.MockTransport(upstream), retry=None, timeout=2.0)
    assert client.timeout.as_dict() == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert client.get("https://api.test/").status_code == 503
    assert len(upstream.requests) == 1


def test_make_client_refuses_missing_timeouts() -> None:
    with pytest.raises(ValueError, match="timeout"):
        make_client(timeout=httpx.Timeout(None))
    with pytest.raises(ValueError, match="timeout"):
        make_client(timeout=httpx.Timeout(5.0, read=None))


# ------------------------------------------------------------------- token bucket


def bucket(redis_client: Any, clock: FakeTime, key: str = "rl:test", rate: float = 2.0, burst: int = 3):
    return TokenBucket(redis_client, key, rate_per_s=rate, burst=burst, clock=clock, sleep=clock.sleep)


def test_bucket_grants_burst_then_paces(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, rate=2.0, burst=3)
    assert [b.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.try_acquire() == pytest.approx(0.5)
    assert b.try_acquire(2) == pytest.approx(1.0)  # a refused request takes nothing
    assert b.acquire() == pytest.approx(0.5)
    assert clock.sleeps == [pytest.approx(0.5)]
    assert b.acquire() == pytest.approx(0.5)
    assert clock.now - T0 == pytest.approx(1.0)


def test_bucket_refills_over_time_but_never_beyond_burst(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, rate=2.0, burst=3)
    for _ in range(3):
        assert b.try_acquire() == 0.0
    clock.advance(1.0)  # two tokens back
    assert [b.try_acquire(), b.try_acquire()] == [0.0, 0.0]
    assert b.try_acquire() == pytest.approx(0.5)
    clock.advance(3600)  # an hour idle: still only `burst` tokens
    assert [b.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.try_acquire() == pytest.approx(0.5)


def test_bucket_state_is_a_hash_with_ttl(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, key="rl:test:ttl", rate=2.0, burst=3)
    b.try_acquire()
    state = redis_client.hgetall("rl:test:ttl")
    assert float(state[b"tokens"]) == pytest.approx(2.0)
    assert float(state[b"ts"]) == pytest.approx(T0)
    assert 0 < redis_client.ttl("rl:test:ttl") <= 60
    slow = bucket(redis_client, clock, key="rl:test:slow", rate=0.1, burst=10)
    slow.try_acquire()
    assert 60 < redis_client.ttl("rl:test:slow") <= 200


def test_two_buckets_on_one_key_share_the_quota(redis_client: Any, clock: FakeTime) -> None:
    a = bucket(redis_client, clock, key="rl:shared", rate=1.0, burst=2)
    b = bucket(redis_client, clock, key="rl:shared", rate=1.0, burst=2)
    other = bucket(redis_client, clock, key="rl:other", rate=1.0, burst=2)
    assert a.try_acquire() == 0.0
    assert b.try_acquire() == 0.0
    assert a.try_acquire() == pytest.approx(1.0)
    assert b.try_acquire() == pytest.approx(1.0)
    assert other.try_acquire() == 0.0
    clock.advance(1.0)
    assert b.try_acquire() == 0.0
    assert a.try_acquire() == pytest.approx(1.0)


def test_clock_going_backwards_never_refills(redis_client: Any, clock: FakeTime) -> None:
    fast = FakeTime(T0 + 5)  # another container whose clock is 5 s ahead
    a = bucket(redis_client, fast, key="rl:skew", rate=1.0, burst=1)
    b = bucket(redis_client, clock, key="rl:skew", rate=1.0, burst=1)
    assert a.try_acquire() == 0.0
    assert b.try_acquire() == pytest.approx(1.0)
    clock.advance(4.0)  # still behind the stored timestamp
    assert b.try_acquire() == pytest.approx(1.0)


def test_set_rate_takes_effect(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, key="rl:rate", rate=1.0, burst=1)
    assert b.try_acquire() == 0.0
    assert b.try_acquire() == pytest.approx(1.0)
    b.set_rate(4.0)
    assert (b.rate_per_s, b.burst) == (4.0, 1)
    assert b.try_acquire() == pytest.approx(0.25)
    clock.advance(0.25)
    assert b.try_acquire() == 0.0
    b.set_rate(0.5, burst=5)
    assert b.try_acquire() == pytest.approx(2.0)
    clock.advance(60)
    assert [b.try_acquire() for _ in range(6)] == [0.0] * 5 + [pytest.approx(2.0)]


def test_acquire_timeout_raises_rate_limited(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, key="rl:timeout", rate=0.5, burst=1)
    assert b.acquire(timeout_s=0) == 0.0
    with pytest.raises(RateLimited) as info:
        b.acquire(timeout_s=1.0)
    assert info.value.retry_after_s == pytest.approx(2.0)
    assert info.value.status == 429
    assert info.value.headers() == {"retry-after": "2"}
    assert clock.sleeps == []  # refused without waiting
    assert b.acquire(timeout_s=2.0) == pytest.approx(2.0)


def test_bucket_rejects_impossible_requests(redis_client: Any, clock: FakeTime) -> None:
    b = bucket(redis_client, clock, rate=1.0, burst=2)
    with pytest.raises(ValueError, match="burst"):
        b.try_acquire(3)
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(redis_client, "rl:x", rate_per_s=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(redis_client, "rl:x", rate_per_s=1, burst=0)


def test_bucket_fails_open_when_redis_is_down(clock: FakeTime) -> None:
    import fakeredis

    server = fakeredis.FakeServer()
    server.connected = False
    b = bucket(fakeredis.FakeRedis(server=server), clock, rate=1.0, burst=1)
    assert [b.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


# --------------------------------------------------------------- raise_for_upstream


def test_success_does_not_raise() -> None:
    raise_for_upstream(httpx.Response(200), "sp-api")
    raise_for_upstream(httpx.Response(204), "sp-api")


def test_spapi_json_error_is_named() -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Invalid\n MarketplaceId", "details": ""}]}
    with pytest.raises(UpstreamError) as info:
        raise_for_upstream(httpx.Response(400, json=body), "sp-api")
    assert info.value.status == 502
    assert info.value.detail == "sp-api answered HTTP 400: InvalidInput: Invalid MarketplaceId"


def test_apify_and_slack_errors_are_named() -> None:
    apify = {"error": {"type": "record-not-found", "message": "Actor was not found"}}
    expected = r"^apify answered HTTP 404: record-not-found: Actor was not found$"
    with pytest.raises(UpstreamError, match=expected):
        raise_for_upstream(httpx.Response(404, json=apify), "apify")
    with pytest.raises(UpstreamError, match=r"^slack answered HTTP 400: invalid_payload$"):
        raise_for_upstream(httpx.Response(400, text="invalid_payload"), "slack")


def test_long_text_body_is_left_out() -> None:
    with pytest.raises(UpstreamError) as info:
        raise_for_upstream(httpx.Response(500, text="<html>" + "x" * 300 + "</html>"), "apify")
    assert info.value.detail == "apify answered HTTP 500"


def test_rate_limited_carries_retry_after() -> None:
    with pytest.raises(RateLimited) as info:
        raise_for_upstream(httpx.Response(429, headers={"Retry-After": "7"}), "sp-api")
    assert info.value.status == 429
    assert info.value.retry_after_s == 7.0
    assert info.value.detail == "sp-api answered HTTP 429"
    with pytest.raises(RateLimited) as info:
        raise_for_upstream(httpx.Response(429), "sp-api")
    assert info.value.retry_after_s is None


def test_error_detail_never_carries_request_secrets() -> None:
    request = httpx.Request(
        "GET", "https://api.test/x?token=s3cret", headers={"x-amz-access-token": "Atza|s3cret"}
    )
    response = httpx.Response(503, request=request, headers={"x-amzn-requestid": "r1"}, text="busy")
    with pytest.raises(UpstreamError) as info:
        raise_for_upstream(response, "sp-api")
    assert info.value.detail == "sp-api answered HTTP 503: busy"
    assert "s3cret" not in repr(info.value.to_problem())


def test_parse_retry_after() -> None:
    assert http.parse_retry_after("3", T0) == 3.0
    assert http.parse_retry_after(" 1.5 ", T0) == 1.5
    assert http.parse_retry_after("-4", T0) == 0.0
    assert http.parse_retry_after(email.utils.formatdate(T0 + 30, usegmt=True), T0) == 30.0
    assert http.parse_retry_after(email.utils.formatdate(T0 - 30, usegmt=True), T0) == 0.0
    assert http.parse_retry_after("soon", T0) is None
    assert http.parse_retry_after("inf", T0) is None
    assert http.parse_retry_after(None, T0) is None
