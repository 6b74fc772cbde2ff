"""opsdeck.cache generation counters: cross-container invalidation without pub/sub, and stale_at."""

from __future__ import annotations

from opsdeck import cache
from tests.integration.test_cache import Clock, Loader

GEN = ("gen:a",)


def test_an_entry_is_served_until_its_generation_moves(redis_client):
    clock, load = Clock(), Loader()
    first = cache.get_or_load("k", load, fresh_s=10, generations=GEN, now=clock)
    assert first.state == "miss" and first.stale_at == clock.t + 10
    hit = cache.get_or_load("k", load, fresh_s=10, generations=GEN, now=clock)
    assert (hit.state, load.calls, hit.stale_at) == ("fresh", 1, first.stale_at)
    cache.bump(*GEN)  # a writer in any container
    after = cache.get_or_load("k", load, fresh_s=10, generations=GEN, now=clock)
    assert (after.state, after.value, load.calls) == ("miss", {"n": 2}, 2)
    assert cache.get_or_load("k", load, fresh_s=10, generations=GEN, now=clock).state == "fresh"


def test_a_value_loaded_before_a_concurrent_write_is_never_served_after_it(redis_client):
    """The race plain delete-after-write loses: read old rows, writer commits + invalidates, store."""
    clock = Clock()

    def old_rows_then_a_write_lands():
        cache.bump(*GEN)  # the writer commits and invalidates while this loader is running
        return {"price": "old"}

    cache.get_or_load("k", old_rows_then_a_write_lands, fresh_s=60, generations=GEN, now=clock)
    served = cache.get_or_load("k", Loader({"price": "new"}), fresh_s=60, generations=GEN, now=clock)
    assert (served.state, served.value) == ("miss", {"price": "new"})


def test_several_generations_each_invalidate(redis_client):
    clock, load = Clock(), Loader()
    gens = ("gen:a", "gen:b")
    cache.get_or_load("pair", load, fresh_s=10, generations=gens, now=clock)
    cache.bump("gen:b")
    assert cache.get_or_load("pair", load, fresh_s=10, generations=gens, now=clock).state == "miss"
    cache.bump("gen:a")
    assert cache.get_or_load("pair", load, fresh_s=10, generations=gens, now=clock).state == "miss"
    assert load.calls == 3


def test_stale_hits_carry_stale_at_and_entries_without_generations_still_work(redis_client):
    clock, load = Clock(), Loader()
    cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    clock.t += 11
    redis_client.set("k:reloading", b"1", ex=10)
    stale = cache.get_or_load("k", load, fresh_s=10, stale_s=50, now=clock)
    assert stale.state == "stale" and stale.stale_at == clock.t - 1
