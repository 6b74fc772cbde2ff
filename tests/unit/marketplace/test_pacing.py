"""Deadlines and per-operation shared quotas (Redis token buckets on the in-process fake)."""

from __future__ import annotations

import time

import pytest

from functions.marketplace.pacing import (
    Deadline,
    DeadlineReached,
    OperationLimiter,
    deadline_scope,
    deadline_sleep,
    lambda_deadline,
    operation_scope,
    request_timeout,
)
from opsdeck.http import TokenBucket
from tests.support import LambdaContext


def bucket(redis_client, key: str, rate: float, burst: int) -> TokenBucket:
    return TokenBucket(redis_client, key, rate_per_s=rate, burst=burst)


def test_lambda_deadline_keeps_a_reserve():
    assert 869 <= lambda_deadline(LambdaContext(timeout_s=900)).remaining() <= 870
    assert 7.9 <= lambda_deadline(LambdaContext(timeout_s=10)).remaining() <= 8.0
    assert lambda_deadline(None).remaining() == float("inf")


def test_sleeps_and_timeouts_respect_the_deadline():
    with deadline_scope(Deadline.after(0.5)):
        deadline_sleep(0.01)
        with pytest.raises(DeadlineReached):
            deadline_sleep(5)
        assert request_timeout().read <= 0.5
    with deadline_scope(Deadline.after(-1)), pytest.raises(DeadlineReached):
        request_timeout()


def test_limiter_pays_from_the_operation_in_flight(redis_client):
    limiter = OperationLimiter(
        {"a": bucket(redis_client, "t:a", 1, 1), "b": bucket(redis_client, "t:b", 1, 1)}
    )
    with operation_scope("a"):
        assert limiter.acquire() == 0
    with operation_scope("b"):
        assert limiter.acquire() == 0  # b's own bucket, untouched by a
    assert limiter.acquire() == 0  # no operation: no limit
    with (
        deadline_scope(Deadline.after(0.2)),
        operation_scope("a"),
        pytest.raises(DeadlineReached, match="quota"),
    ):
        limiter.acquire()  # a's next token is ~1 s away


def test_advertised_rate_is_adopted_minus_the_margin_and_429_drains(redis_client):
    b = bucket(redis_client, "t:items", 0.5, 30)
    limiter = OperationLimiter({"getOrderItems": b}, margin=0.02)
    limiter.adopt("getOrderItems", "4.0")
    assert b.rate_per_s == pytest.approx(3.92)
    limiter.adopt("getOrderItems", "garbage")
    limiter.adopt("getOrderItems", "0")
    assert b.rate_per_s == pytest.approx(3.92)
    limiter.drain("getOrderItems")
    assert b.try_acquire(1) > 0  # empty: the next token comes at the advertised rate
    started = time.monotonic()
    with operation_scope("getOrderItems"):
        limiter.acquire()
    assert 0.15 < time.monotonic() - started < 1.0
