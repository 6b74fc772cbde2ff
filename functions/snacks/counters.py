"""Reaction counts in Redis: one hash per snack (``l``, ``h``), changed with HINCRBY.

Ordering with the reaction table (the source of truth), see docs/snacks.md "Reaction counts":

* a reaction request changes its row while holding ``FOR KEY SHARE`` on the snack row, applies
  its delta here *before* it commits (a failed commit applies the inverse), then commits;
* ``apply`` only increments a hash that exists. A missing hash (a new snack, or Redis lost
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

PREFIX = "snacks:rx:"
DIRTY = PREFIX + "dirty"
MISSING = PREFIX + "missing"
EPOCH = PREFIX + "epoch"

# KEYS[1] hash, KEYS[2] dirty set; ARGV: snack id, like delta, hate delta
_APPLY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local l = redis.call('HINCRBY', KEYS[1], 'l', tonumber(ARGV[2]))
local h = redis.call('HINCRBY', KEYS[1], 'h', tonumber(ARGV[3]))
redis.call('SADD', KEYS[2], ARGV[1])
return {l, h}
"""

_scripts: dict[int, Any] = {}


def key(snack_id: int) -> str:
    return f"{PREFIX}{snack_id}"


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
    """Add the deltas to an existing hash: the new counts, or ``None`` when the hash is missing."""
    result = _apply_script()(keys=[key(snack_id), DIRTY], args=[snack_id, like_delta, hate_delta])
    if result is None:
        return None
    return int(result[0]), int(result[1])


def mark_missing(snack_id: int) -> None:
    _client().sadd(MISSING, snack_id)


def counts(snack_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Counts of the snacks whose hash exists (one round trip)."""
    if not snack_ids:
        return {}
    pipe = _client().pipeline(transaction=False)
    for sid in snack_ids:
        pipe.hmget(key(sid), "l", "h")
    out: dict[int, tuple[int, int]] = {}
    for sid, (likes, hates) in zip(snack_ids, pipe.execute(), strict=True):
        if likes is not None and hates is not None:
            out[sid] = (int(likes), int(hates))
    return out


def store(values: Iterable[tuple[int, int, int]], *, epoch: str | None = None) -> None:
    """Overwrite hashes with exact counts ``(snack id, likes, hates)``; forget them as missing."""
    pipe = _client().pipeline(transaction=True)
    ids = []
    for sid, likes, hates in values:
        pipe.hset(key(sid), mapping={"l": likes, "h": hates})
        ids.append(sid)
    if ids:
        pipe.srem(MISSING, *ids)
    if epoch is not None:
        pipe.set(EPOCH, epoch)
    pipe.execute()


def epoch_present() -> bool:
    return bool(_client().exists(EPOCH))


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
