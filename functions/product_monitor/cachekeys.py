"""The seed's Redis keys (§2b), their TTLs, and invalidation after writes.

| key                                   | endpoint                              | fresh | stale window |
|---------------------------------------|---------------------------------------|-------|--------------|
| ``product:{asin}:summary``            | GET /v1/products/{asin}               | 300 s | +3600 s      |
| ``product:{asin}:metrics:daily:{r}``  | GET /v1/products/{asin}/metrics       | 300 s | +900 s       |
| ``compare:{asin}:{competitor}``       | GET /v1/competitions/{asin} (a pair)  | 300 s | +900 s       |
| ``recommendation:{asin}:latest``      | GET /v1/recommendations/{asin}, report| 120 s | +600 s       |

What replaces the seed's pub/sub: every entry is stored under the value of a per-ASIN
generation counter (``pm:gen:{asin}``; a pair under both ASINs' counters), read in the same
``MGET`` as the entry. A write commits, then ``INCR``s the counters of the ASINs it touched
(``invalidate``): every container sees the new value on its next read, there is no
subscriber to miss a message, and a reader that loaded old rows concurrently cannot
re-insert them (they are tagged with the old generation). The keys are also deleted, to free
memory at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opsdeck import cache
from opsdeck.observability import logger

RANGES = {"7d": 7, "30d": 30, "90d": 90}


@dataclass(frozen=True, slots=True)
class Ttl:
    fresh_s: float
    stale_s: float


#: summaries are written through by the worker and invalidated by generation on every write,
#: so their TTL only bounds memory and drift, not staleness after a write
SUMMARY = Ttl(300, 3600)
METRICS = Ttl(300, 900)
COMPARE = Ttl(300, 900)
RECOMMENDATION = Ttl(120, 600)


def gen(asin: str) -> str:
    return f"pm:gen:{asin}"


def summary(asin: str) -> str:
    return f"product:{asin}:summary"


def metrics(asin: str, range_: str) -> str:
    return f"product:{asin}:metrics:daily:{range_}"


def compare(asin: str, competitor: str) -> str:
    return f"compare:{asin}:{competitor}"


def recommendation(asin: str) -> str:
    return f"recommendation:{asin}:latest"


def keys_of(asin: str) -> list[str]:
    return [summary(asin), recommendation(asin), *(metrics(asin, r) for r in RANGES)]


def invalidate(asins: Iterable[str]) -> bool:
    """After a committed write: new generations for ``asins`` (every node), their keys dropped.

    Returns False when Redis is unreachable (then entries age out by their TTL; logged).
    """
    import redis

    unique = sorted(set(asins))
    if not unique:
        return True
    try:
        cache.bump(*(gen(a) for a in unique))
        cache.invalidate(*(k for a in unique for k in keys_of(a)))
    except (redis.RedisError, OSError) as exc:
        logger.warning("cache invalidation failed", extra={"asins": len(unique), "error": type(exc).__name__})
        return False
    return True


def store_summaries(values: dict[str, Any]) -> int:
    """Write summaries through, each under its ASIN's current generation; 0 if Redis is down."""
    import redis

    if not values:
        return 0
    asins = sorted(values)
    try:
        gens = cache.client().mget([gen(a) for a in asins])
        for asin, g in zip(asins, gens, strict=True):
            cache.store(
                summary(asin),
                values[asin],
                fresh_s=SUMMARY.fresh_s,
                stale_s=SUMMARY.stale_s,
                generation=[g.decode() if g is not None else "0"],
            )
    except (redis.RedisError, OSError) as exc:
        logger.warning("cache write-through failed", extra={"asins": len(asins), "error": type(exc).__name__})
        return 0
    return len(asins)
