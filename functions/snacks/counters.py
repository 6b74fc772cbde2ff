"""Reaction counts in Redis: two hashes (snack id → likes, snack id → hates), changed with HINCRBY.

Ordering with the reaction table (the source of truth), see docs/snacks.md "Reaction counts":

* a reaction request changes its row while holding ``FOR KEY SHARE`` on the snack row, applies
  its delta here *before* it commits (a failed commit applies the inverse), then commits;
* ``apply`` only increments counts that exist. Missing counts (a new snack, or Redis lost
  its data) is not guessed from a count that concurrent, uncommitted requests could still
  change: the snack goes into the ``missing`` set and the request answers the counts its own
  transaction sees;
* the flush function reconciles missing snacks under ``FOR UPDATE`` on their rows — which waits
  for every in-flight reaction of those snacks and holds new ones back — so the count it
  writes to both PostgreSQL and Redis is exact. The ``epoch`` key marks a Redis that has been
  reconciled in full; when it is gone (flushed, replaced, failed over empty) the next flush
  reconciles every snack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opsdeck import cache

# one hash tag: every key of a script is in one cluster slot (ElastiCache cluster mode)
PREFIX = "snacks:rx:{c}:"
LIKES = PREFIX + "likes"  # hash: snack id → likes
HATES = PREFIX + "hates"  # hash: snack id → hates
DIRTY = PREFIX + "dirty"
MISSING = PREFIX + "missing"
EPOCH = PREFIX + "epoch"

# KEYS: likes, hates, dirty; ARGV: snack id, like delta, hate delta
_APPLY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
local l = redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[2]))
local h = redis.call('HINCRBY', KEYS[2], ARGV[1], tonumber(ARGV[3]))
redis.call('SADD', KEYS[3], ARGV[1])
return {l, h}
"""

_scripts: dict[int, Any] = {}


def _client():
    return cache.client()


def _apply_script():
    r = _client()
    found = _scripts.get(id(r))
    if found is None:
        _scripts.clear()
        found = _scripts[id(r)] = r.register_script(_APPLY)
    return found


def apply(snack_id: int, like_delta: int, hate_delta: int) -> tuple[int, int] | None:
    """Add the deltas to a snack that has counts: the new counts, or ``None`` when it has none."""
    result = _apply_script()(keys=[LIKES, HATES, DIRTY], args=[snack_id, like_delta, hate_delta])
    if result is None:
        return None
    return int(result[0]), int(result[1])


def mark_missing(snack_id: int) -> None:
    _client().sadd(MISSING, snack_id)


def counts(snack_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Counts of the snacks that have them: two HMGETs, one round trip, whatever the page size."""
    if not snack_ids:
        return {}
    pipe = _client().pipeline(transaction=False)
    pipe.hmget(LIKES, list(snack_ids))
    pipe.hmget(HATES, list(snack_ids))
    likes, hates = pipe.execute()
    return {
        sid: (int(lv), int(hv))
        for sid, lv, hv in zip(snack_ids, likes, hates, strict=True)
        if lv is not None and hv is not None
    }


def store(values: Iterable[tuple[int, int, int]], *, epoch: str | None = None) -> None:
    """Overwrite counts with exact ones ``(snack id, likes, hates)``; forget them as missing."""
    values = list(values)
    pipe = _client().pipeline(transaction=True)
    for chunk in range(0, len(values), 5000):
        part = values[chunk : chunk + 5000]
        pipe.hset(LIKES, mapping={sid: likes for sid, likes, _h in part})
        pipe.hset(HATES, mapping={sid: hates for sid, _l, hates in part})
        pipe.srem(MISSING, *[sid for sid, _l, _h in part])
    if epoch is not None:
        pipe.set(EPOCH, epoch)
    pipe.execute()


def epoch() -> float | None:
    """When Redis was last reconciled in full (Unix seconds), or ``None``: it lost its data."""
    raw = _client().get(EPOCH)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def take(key_name: str, n: int) -> list[int]:
    """Pop up to ``n`` snack ids from ``dirty`` or ``missing``."""
    raw = _client().spop(key_name, n) or []
    return sorted(int(v) for v in raw)


def put_back(key_name: str, snack_ids: Iterable[int]) -> None:
    ids = list(snack_ids)
    if ids:
        _client().sadd(key_name, *ids)


def hashes(snack_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    return counts(snack_ids)
