"""opsdeck.cache: cache-aside with stale-while-revalidate, invalidation, outages."""

from __future__ import annotations

import pytest

from opsdeck import cache
from opsdeck.errors import ConfigError, Unavailable
from tests.support import env


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class Loader:
    def __init__(self, value=None, fail=False) -> None:
        self.calls = 0
        self.value = value
        self.fail = fail

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise RuntimeError("upstream down")
        return self.value if self.value is not None else {"n": self.calls}


def test_miss_then_fresh_then_stale_then_reload(redis_client):
    clock, load = Clock(), Loader()
    first = cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    assert (first.state, first.value, load.calls) == ("miss", {"n": 1}, 1)
    clock.t += 5
    fresh = cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    assert (fresh.state, fresh.value, fresh.age_s, load.calls) == ("fresh", {"n": 1}, 5.0, 1)
    assert fresh.etag == first.etag
    clock.t += 10  # 15 s: stale; this caller wins the reload lock and reloads
    reloaded = cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    assert (reloaded.state, reloaded.value, load.calls) == ("miss", {"n": 2}, 2)
    assert reloaded.etag != first.etag


def test_only_one_caller_reloads_a_stale_entry(redis_client):
    clock, load = Clock(), Loader()
    cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    clock.t += 11
    redis_client.set("k:reloading", b"1", ex=10)  # another container is reloading
    served = cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    assert (served.state, served.value, load.calls) == ("stale", {"n": 1}, 1)


def test_failed_reload_serves_stale(redis_client):
    clock = Clock()
    cache.get_or_load("k", Loader({"v": 1}), fresh_s=10, stale_s=50, now=clock)
    clock.t += 20
    served = cache.get_or_load("k", Loader(fail=True), fresh_s=10, stale_s=50, now=clock)
    assert (served.state, served.value) == ("stale", {"v": 1})


def test_expired_entry_is_reloaded(redis_client):
    load = Loader()
    cache.get_or_load("k", load, fresh_s=0.01, stale_s=0)
    import time

    time.sleep(0.05)
    assert cache.get_or_load("k", load, fresh_s=10).state == "miss"
    assert load.calls == 2


def test_decimals_and_datetimes_are_cached_as_strings(redis_client):
    from datetime import UTC, datetime
    from decimal import Decimal

    value = {"price": Decimal("19.99"), "at": datetime(2026, 1, 1, tzinfo=UTC)}
    served = cache.get_or_load("k", lambda: value, fresh_s=10)
    assert served.value == {"price": "19.99", "at": "2026-01-01T00:00:00+00:00"}


def test_invalidate_and_invalidate_prefix(redis_client):
    for i in range(1200):
        cache.store(f"product:{i}", i, fresh_s=60)
    cache.store("other", 1, fresh_s=60)
    assert cache.invalidate("product:0", "missing") == 1
    assert cache.invalidate_prefix("product:") == 1199
    assert redis_client.get("other") is not None


def test_outage_degrades_to_the_loader():
    with env(REDIS_URL="redis://127.0.0.1:1/0"):
        served = cache.get_or_load("k", lambda: {"v": 1}, fresh_s=10)
        assert (served.state, served.value) == ("bypass", {"v": 1})
        with pytest.raises(Unavailable, match="cache unavailable"):
            cache.ping()


def test_missing_or_bad_url_is_a_clear_error():
    with env(REDIS_URL=None), pytest.raises(ConfigError, match="REDIS_URL is not set"):
        cache.client()
    with env(REDIS_URL="memcached://x"), pytest.raises(ConfigError, match="redis://"):
        cache.client()


def test_corrupt_entry_is_reloaded_not_raised(redis_client):
    redis_client.set("k", b"not json at all")
    served = cache.get_or_load("k", lambda: {"v": 2}, fresh_s=10)
    assert (served.state, served.value) == ("miss", {"v": 2})


def test_prefix_with_glob_characters_only_drops_its_own_keys(redis_client):
    cache.store("a?b:1", 1, fresh_s=60)
    cache.store("axb:1", 1, fresh_s=60)
    cache.store("a[b]:1", 1, fresh_s=60)
    cache.store("ab:1", 1, fresh_s=60)
    assert cache.invalidate_prefix("a?b:") == 1
    assert cache.invalidate_prefix("a[b]:") == 1
    assert redis_client.get("axb:1") is not None and redis_client.get("ab:1") is not None
