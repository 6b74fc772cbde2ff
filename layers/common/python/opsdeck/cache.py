"""Redis: one lazy client per container, cache-aside with stale-while-revalidate.

``REDIS_URL`` selects the server: ``redis://`` / ``rediss://`` (ElastiCache, with the
auth token from ``REDIS_AUTH_SECRET_ID``), or ``fakeredis://`` for an in-process fake
shared by every function in the process (the local cloud, tests without Redis).

Cached entries are JSON ``{"v": value, "at": written, "stale_at": t}`` with a Redis
TTL covering the stale window. ``get_or_load`` answers:
  fresh  → the value;
  stale  → the value, and one caller (who wins a short lock) reloads it;
  absent → loads, stores, returns.
A cache outage degrades to calling the loader: the cache speeds things up, it never
takes an API down.

Generations (cross-node invalidation without pub/sub): ``get_or_load(..., generations=(k, …))``
reads the entry and the generation counters in one ``MGET`` and accepts the entry only if it
was stored under the same generations; a writer calls ``bump(k, …)`` after its commit. Every
container reads the same counters, so one ``INCR`` invalidates an entry everywhere, and a
reader that loaded old rows just before the write stores them under the old generation,
where no later reader will accept them (plain delete-after-write would let that reader
re-insert the stale value until its TTL).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .errors import ConfigError, Unavailable
from .jsonutil import dumps
from .settings import platform, secret

if TYPE_CHECKING:
    import redis

T = TypeVar("T")
_lock = threading.Lock()
_client: redis.Redis | None = None
_fake_server: Any = None
_GLOB_SPECIAL = re.compile(r"[\\*?\[\]^]")


def client() -> redis.Redis:
    """The container's Redis client, created on first use."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = _create_client()
    return _client


def _create_client() -> redis.Redis:
    s = platform()
    if s.redis_url is None:
        raise ConfigError("REDIS_URL is not set (use fakeredis:// for an in-process cache)")
    url = s.redis_url.get_secret_value()
    if url.startswith("fakeredis://"):
        return fake_client()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"REDIS_URL must be redis://, rediss:// or fakeredis://, got {url.split(':')[0]}://"
        )
    import redis

    password = None
    if s.redis_auth_secret_id:
        password = secret(s.redis_auth_secret_id).get("value") or secret(s.redis_auth_secret_id).get(
            "password"
        )
    return redis.Redis.from_url(
        url,
        password=password,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
        decode_responses=False,
    )


def fake_client() -> redis.Redis:
    """A client of the process-wide in-process fake server."""
    global _fake_server
    import fakeredis

    if _fake_server is None:
        _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server)


def reset() -> None:
    """Forget the client (tests, or after the configuration changed)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def ping() -> float:
    """``PING``; returns the round trip in milliseconds or raises ``Unavailable``."""
    import redis

    started = time.perf_counter()
    try:
        client().ping()
    except redis.RedisError as exc:
        raise Unavailable(f"cache unavailable: {exc}") from exc
    return (time.perf_counter() - started) * 1000


# ------------------------------------------------------------ cache-aside + SWR


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    value: T
    #: fresh | stale (served while another caller reloads) | miss (just loaded)
    #: | bypass (cache unreachable, loaded directly)
    state: Literal["fresh", "stale", "miss", "bypass"]
    #: seconds since the value was loaded
    age_s: float
    #: strong validator of the value (for HTTP ETag / If-None-Match)
    etag: str
    #: when the value stops being fresh (epoch seconds); None when it was not cached
    stale_at: float | None = None


def _etag(payload: str) -> str:
    return '"' + hashlib.blake2b(payload.encode(), digest_size=12).hexdigest() + '"'


def get_or_load(
    key: str,
    loader: Callable[[], T],
    *,
    fresh_s: float,
    stale_s: float = 0,
    now: Callable[[], float] = time.time,
    generations: tuple[str, ...] = (),
) -> Cached[T]:
    """Cache-aside read of ``key`` with a stale-while-revalidate window.

    The value must be JSON-serialisable (Decimals and datetimes become strings).
    During ``stale_s`` after ``fresh_s`` the stale value is served and exactly one
    caller reloads (guarded by a lock key); if that reload fails, the stale value
    is served again rather than an error. With ``generations`` (see the module
    docstring) an entry stored under other generation values is a miss.
    """
    import redis

    gen: list[str] | None = None
    try:
        r = client()
        if generations:
            raw, *values = r.mget(key, *generations)
            gen = [v.decode() if v is not None else "0" for v in values]
        else:
            raw = r.get(key)
        entry = _decode(raw) if raw is not None else None
        if entry is not None and gen is not None and entry.get("g") != gen:
            entry = None
        t = now()
        if entry is not None:
            age = max(0.0, t - entry["at"])
            if t < entry["stale_at"]:
                return Cached(entry["v"], "fresh", age, entry["etag"], entry["stale_at"])
            if not _try_lock(r, key, fresh_s):
                return Cached(entry["v"], "stale", age, entry["etag"], entry["stale_at"])
    except redis.RedisError:
        value = loader()
        return Cached(value, "bypass", 0.0, _etag(dumps(value)))
    if entry is not None:
        try:
            value = loader()
        except Exception:
            return Cached(entry["v"], "stale", age, entry["etag"], entry["stale_at"])
        return store(key, value, fresh_s=fresh_s, stale_s=stale_s, now=now, _state="miss", generation=gen)
    return store(key, loader(), fresh_s=fresh_s, stale_s=stale_s, now=now, _state="miss", generation=gen)


def _decode(raw: bytes) -> dict[str, Any] | None:
    """A stored entry, or None when it is not one of ours (then it is simply reloaded)."""
    try:
        entry = json.loads(raw)
        if isinstance(entry, dict) and {"v", "at", "stale_at", "etag"} <= entry.keys():
            return entry
    except ValueError:
        pass
    return None


def _try_lock(r: redis.Redis, key: str, fresh_s: float) -> bool:
    ttl = max(1, min(30, int(fresh_s)))
    return bool(r.set(f"{key}:reloading", b"1", nx=True, ex=ttl))


def store(
    key: str,
    value: T,
    *,
    fresh_s: float,
    stale_s: float = 0,
    now: Callable[[], float] = time.time,
    _state: Literal["fresh", "miss"] = "fresh",
    generation: list[str] | None = None,
) -> Cached[T]:
    """Write ``value`` under ``key`` (fresh for ``fresh_s``, then stale for ``stale_s``),
    tagged with the ``generation`` values read before the value was loaded."""
    import redis

    payload = dumps(value)
    etag = _etag(payload)
    t = now()
    tag = "" if generation is None else f',"g":{json.dumps(generation)}'
    entry = f'{{"v":{payload},"at":{t!r},"stale_at":{t + fresh_s!r},"etag":{json.dumps(etag)}{tag}}}'
    try:
        pipe = client().pipeline(transaction=False)
        pipe.set(key, entry, px=max(1, int((fresh_s + stale_s) * 1000)))
        pipe.delete(f"{key}:reloading")
        pipe.execute()
    except redis.RedisError:
        return Cached(json.loads(payload), "bypass", 0.0, etag)
    return Cached(json.loads(payload), _state, 0.0, etag, t + fresh_s)


def bump(*generations: str, ttl_s: int = 30 * 86_400) -> None:
    """Invalidate, on every node, the entries read under these generation counters.

    Raises ``redis.RedisError`` when the cache is unreachable (the caller decides: entries
    then age out by their TTL).
    """
    if not generations:
        return
    pipe = client().pipeline(transaction=False)
    for g in generations:
        pipe.incr(g)
        pipe.expire(g, ttl_s)
    pipe.execute()


def invalidate(*keys: str) -> int:
    """Drop cached entries; returns how many existed."""
    if not keys:
        return 0
    return int(client().unlink(*keys))


def invalidate_prefix(prefix: str, *, batch: int = 500) -> int:
    """Drop every entry whose key starts with ``prefix`` (SCAN, never KEYS)."""
    r = client()
    dropped = 0
    pending: list[bytes] = []
    for k in r.scan_iter(match=_GLOB_SPECIAL.sub(r"\\\g<0>", prefix) + "*", count=batch):
        pending.append(k)
        if len(pending) >= batch:
            dropped += int(r.unlink(*pending))
            pending.clear()
    if pending:
        dropped += int(r.unlink(*pending))
    return dropped
