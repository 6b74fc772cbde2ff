"""snacks benchmarks (issue 12, seed 003), all through ``functions.snacks.api.handler`` with
API Gateway v2 events (Mangum → ES256 verification → account check → SQL → Redis; the reaction
routes are answered without Mangum and FastAPI, ``opsdeck.api.Direct``):

* ``reaction_toggle``: ``POST /snacks/snacks/{uid}/reaction`` switching like ↔ hate on one snack,
  p50/p95 over ``BENCH_SNACKS_TOGGLES`` (2,000) requests (target p95 <= 3 ms);
* ``snack_list``: ``GET /snacks/snacks`` (50 per page, by like/hate ratio) with
  ``BENCH_SNACKS_SNACKS`` (10,000) snacks and ``BENCH_SNACKS_REACTIONS`` (1,000,000) reactions,
  first page and pages deep in the list (keyset cursors), p95 (target <= 20 ms);
* ``monthly_statistics``: ``GET /snacks/statistics?year=&month=`` over ``BENCH_SNACKS_ORDERS``
  (100,000) orders of 3 purchases each spread over 24 months, p95 (target <= 50 ms);
* ``argon2``: one password check with the chosen parameters and with argon2-cffi's defaults,
  side by side (median of ``BENCH_SNACKS_ARGON2`` (15) checks each).

Data is loaded set-based (``generate_series``; the order triggers are disabled for the load
only, so that completed and canceled orders can be written directly), then ``VACUUM (ANALYZE)``.
Secrets Manager is moto in process. Redis is a real server, as in production (ElastiCache):
``BENCH_REDIS_URL``, else ``redis://127.0.0.1:6379`` when it answers — always database 12
(``BENCH_SNACKS_REDIS_DB``), flushed before and after the run (that database only); without one
the in-process fake (``fakeredis``, Lua via lupa, several times slower per command), and the
first output line says which.
``BENCH_SNACKS_CASES`` (``toggle,list,stats,argon2``, default all) picks cases. Shared machine:
keep runs short.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.support import _answers, database, percentiles, quiet_stdout

#: the bench's own database of a shared Redis, flushed before and after (tests own 15, the
#: marketplace and product_monitor benches 14)
REDIS_DB = int(os.environ.get("BENCH_SNACKS_REDIS_DB", "12"))


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _ms(samples: list[float]) -> dict[str, float]:
    return {k.replace("_us", "_ms"): round(v / 1000, 3) for k, v in percentiles(samples).items()}


def _cases() -> set[str]:
    raw = os.environ.get("BENCH_SNACKS_CASES", "toggle,list,stats,argon2")
    return {c.strip() for c in raw.split(",") if c.strip()}


def redis_url() -> tuple[str, str]:
    """(the Redis URL, why): a real server on database 15 when one answers, else the fake."""
    given = os.environ.get("BENCH_REDIS_URL")
    if given and given.startswith("fakeredis://"):
        return "fakeredis://", "BENCH_REDIS_URL asks for the fake"
    if given:
        url = given.rstrip("/")
    elif _answers("127.0.0.1", 6379):
        url = "redis://127.0.0.1:6379"
    else:
        return "fakeredis://", "no Redis answers on 127.0.0.1:6379 and BENCH_REDIS_URL is not set"
    url = re.sub(r"^((?:rediss?)://[^/]+)(/\d+)?$", rf"\1/{REDIS_DB}", url)
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # any failure: say so and use the fake
        return "fakeredis://", f"{url} does not answer ({type(exc).__name__})"
    return url, "real server"


@contextlib.contextmanager
def _environment(redis: str) -> Iterator[None]:
    import boto3
    from moto import mock_aws

    from functions.snacks import tokens
    from opsdeck import auth, aws, cache, settings

    os.environ.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    os.environ["REDIS_URL"] = redis
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["SNACKS_SIGNIN_ACCOUNT_BURST"] = "100000"
    os.environ["SNACKS_SIGNIN_IP_BURST"] = "100000"
    with mock_aws():
        aws.reset()
        arn = boto3.client("secretsmanager").create_secret(
            Name="snacks-signing-keys", SecretString=json.dumps(tokens.new_secret_value("bench-1"))
        )["ARN"]
        os.environ["SNACKS_SIGNING_KEYS_SECRET_ID"] = arn
        settings.platform.cache_clear()
        cache.reset()
        auth.reset()
        tokens.reset()
        if not redis.startswith("fakeredis://"):
            cache.client().flushdb()  # database 15 only
        try:
            yield
        finally:
            if not redis.startswith("fakeredis://"):
                cache.client().flushdb()
            cache.reset()


class _Api:
    def __init__(self) -> None:
        from functions.snacks import api
        from tests.support import LambdaContext

        self.handler = api.handler
        self.context = LambdaContext("snacks-api")

    def event(
        self, method: str, path: str, token: str | None = None, body: Any = None, query: Any = ""
    ) -> dict:
        from localcloud.events import http_event

        headers = {"authorization": f"Bearer {token}"} if token else {}
        return http_event(method, path, body=body, query=query, headers=headers)

    def __call__(self, event: dict) -> dict:
        response = self.handler(event, self.context)
        assert response["statusCode"] < 400, response
        return response


def _sql(statement: str, **params: Any) -> Any:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        return conn.execute(text(statement), params)


def _vacuum() -> None:
    from sqlalchemy import text

    from opsdeck import db

    with db.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "VACUUM (ANALYZE) snacks.users, snacks.snacks, snacks.reactions, snacks.orders, "
                "snacks.purchases"
            )
        )


def _token(api: _Api, email: str, role: str = "member") -> str:
    from functions.snacks import passwords, repository
    from opsdeck import db

    with db.transaction() as conn:
        repository.insert_user(conn, email, "Bench", passwords.hash_password("bench-password"), role)
    response = api(
        api.event("POST", "/snacks/auth/token/", body={"username": email, "password": "bench-password"})
    )
    return json.loads(response["body"])["access"]


# ------------------------------------------------------------------- reactions


def _toggle_snack(api: _Api) -> tuple[str, str]:
    """A member and the reaction path of the snack the toggle benchmark switches."""
    member = _token(api, "toggle@bench.local")
    body = {"name": "Toggle Snack", "currency": "KRW", "price": "1"}
    created = api(api.event("POST", "/snacks/snacks/", member, body))
    return member, f"/snacks/snacks/{json.loads(created['body'])['uid']}/reaction/"


def reaction_toggle(api: _Api) -> Iterator[dict]:
    from functions.snacks import flush

    n = _int_env("BENCH_SNACKS_TOGGLES", 2000)
    member, path = _toggle_snack(api)
    events = [
        api.event("POST", path, member, {"type": "like" if i % 2 == 0 else "hate"}) for i in range(n + 200)
    ]
    for e in events[:200]:
        api(e)
    samples = []
    for e in events[200:]:
        started = time.perf_counter()
        api(e)
        samples.append(time.perf_counter() - started)
    ms = _ms(samples)
    yield {
        "metric": "latency",
        "subject": "POST /snacks/snacks/{uid}/reaction (switch like/hate) via Lambda handler",
        "requests": n,
        **ms,
        "value": ms["p95_ms"],
        "unit": "ms",
        "target_p95_ms": 3,
    }
    flush.run({})


def stats_worker() -> None:
    """As ``toggle_worker``, for statistics: per line ``<mode> <n>`` on stdin (``uncached`` or
    ``mixed``, see ``_Stats``) run ``n`` reads and answer their durations (s)."""
    import sys

    out = os.fdopen(os.dup(1), "w", buffering=1)
    url, why = redis_url()
    with database(), _environment(url), quiet_stdout():
        api = _Api()
        admin = _token(api, "admin@bench.local", "admin")
        _load_snacks(_int_env("BENCH_SNACKS_SNACKS", 10_000), _int_env("BENCH_SNACKS_REACTIONS", 20_000))
        _load_statistics()
        stats = _Stats(api, admin)
        stats.run(30, "mixed")
        out.write(json.dumps({"ready": True, "redis": url, "why": why}) + "\n")
        for line in sys.stdin:
            mode, n = line.split()
            out.write(json.dumps(stats.run(int(n), mode)[0]) + "\n")


def toggle_worker() -> None:
    """``python -c 'from bench.bench_snacks import toggle_worker; toggle_worker()'``: set up as
    ``reaction_toggle`` does, then per line ``toggle <n>`` on stdin run ``n`` toggles and answer one JSON
    line of their durations (s). ``bench/snacks_ab.py`` drives two of these (two trees) in turns,
    so that "before" and "after" share the machine's moments alike."""
    import sys

    out = os.fdopen(os.dup(1), "w", buffering=1)
    url, why = redis_url()
    with database(), _environment(url), quiet_stdout():
        api = _Api()
        member, path = _toggle_snack(api)
        events = [api.event("POST", path, member, {"type": t}) for t in ("like", "hate")]
        for i in range(200):
            api(events[i % 2])
        out.write(json.dumps({"ready": True, "redis": url, "why": why}) + "\n")
        i = 0
        for line in sys.stdin:
            samples = []
            for _ in range(int(line.split()[-1])):
                started = time.perf_counter()
                api(events[i % 2])
                samples.append(time.perf_counter() - started)
                i += 1
            out.write(json.dumps(samples) + "\n")


# ------------------------------------------------------------------ snack list


def _load_snacks(snacks: int, reactions: int) -> float:
    started = time.perf_counter()
    users = max(1, -(-reactions // snacks))
    _sql(
        """INSERT INTO snacks.users (email, name, password_hash)
           SELECT 'u' || g || '@bench.local', 'u' || g, 'x' FROM generate_series(1, :n) g""",
        n=users,
    )
    _sql(
        """INSERT INTO snacks.snacks (name, currency, price, description)
           SELECT 'Snack ' || g, CASE WHEN mod(g, 10) = 0 THEN 'USD' ELSE 'KRW' END,
                  mod(g, 50) * 100 + 500, ''
           FROM generate_series(1, :n) g""",
        n=snacks,
    )
    # each snack gets reactions from the first k users (k varies), like share varies by snack
    _sql(
        """INSERT INTO snacks.reactions (snack_id, user_id, kind)
           SELECT s.id, u.id,
                  CASE WHEN (hashtext(s.id::text || ':' || u.id::text) & 1023) < mod(s.id * 37, 1024)
                                   THEN 'like' ELSE 'hate' END
           FROM snacks.snacks s
           JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM snacks.users
                 WHERE email LIKE 'u' || chr(37) || '@bench.local') u
             ON u.n <= :per
           WHERE starts_with(s.name, 'Snack ')""",
        per=users,
    )
    from functions.snacks import flush

    flush.reconcile(None)  # counts into the statistics columns and Redis
    return time.perf_counter() - started


def snack_list(api: _Api, member: str, *, measure: bool = True) -> Iterator[dict]:
    snacks = _int_env("BENCH_SNACKS_SNACKS", 10_000)
    reactions = _int_env("BENCH_SNACKS_REACTIONS", 1_000_000)
    load_s = _load_snacks(snacks, reactions)
    _vacuum()
    count = _sql("SELECT count(*) FROM snacks.reactions").scalar()
    yield {
        "metric": "load_s",
        "subject": "snacks + reactions (set-based SQL) + reconcile",
        "snacks": snacks,
        "reactions": count,
        "value": round(load_s, 1),
        "unit": "s",
    }
    if not measure:
        return
    requests = _int_env("BENCH_SNACKS_LIST_REQUESTS", 500)
    first = api.event("GET", "/snacks/snacks/", member, query={"limit": "50"})
    # cursors deep in the list: walk it once
    cursors = []
    cursor = None
    for _ in range(min(60, snacks // 50)):
        body = json.loads(
            api(
                api.event(
                    "GET",
                    "/snacks/snacks/",
                    member,
                    query={"limit": "50", **({"cursor": cursor} if cursor else {})},
                )
            )["body"]
        )
        cursor = body["next_cursor"]
        if not cursor:
            break
        cursors.append(cursor)
    rng = random.Random(3)
    for label, make in (
        ("first page", lambda: first),
        (
            "pages 2..60 (keyset cursor)",
            lambda: api.event(
                "GET", "/snacks/snacks/", member, query={"limit": "50", "cursor": rng.choice(cursors)}
            ),
        ),
    ):
        events = [make() for _ in range(requests + 50)]
        for e in events[:50]:
            api(e)
        samples = []
        for e in events[50:]:
            started = time.perf_counter()
            api(e)
            samples.append(time.perf_counter() - started)
        ms = _ms(samples)
        yield {
            "metric": "latency",
            "subject": f"GET /snacks/snacks ({label}, 50 per page) via Lambda handler",
            "snacks": snacks,
            "reactions": count,
            "requests": requests,
            **ms,
            "value": ms["p95_ms"],
            "unit": "ms",
            "target_p95_ms": 20,
        }


# ------------------------------------------------------------------- statistics


def _load_orders(orders: int) -> float:
    started = time.perf_counter()
    _sql("ALTER TABLE snacks.orders DISABLE TRIGGER USER")
    _sql("ALTER TABLE snacks.purchases DISABLE TRIGGER USER")
    try:
        _sql(
            """INSERT INTO snacks.orders (user_id, status, created_at, updated_at, status_changed_at)
               SELECT u.id, CASE WHEN mod(g, 10) = 0 THEN 'canceled' ELSE 'completed' END, t, t, t
               FROM generate_series(1, :n) g
               JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM snacks.users) u
                 ON u.rn = mod(g, (SELECT count(*) FROM snacks.users)) + 1,
                    LATERAL (SELECT timestamptz '2025-01-01' + (g::float8 / :n) * interval '730 days' AS t)
                    AS x""",
            n=orders,
        )
        _sql(
            """INSERT INTO snacks.purchases
                   (order_id, snack_id, quantity, unit_price, currency, ordered_at, order_status)
               SELECT o.id, s.id, 1 + mod(o.id + k, 5), s.price, s.currency, o.created_at, o.status
               FROM snacks.orders o CROSS JOIN generate_series(0, 2) k
               JOIN snacks.snacks s
                 ON s.id = mod(o.id * 7 + k * 1234, (SELECT max(id) FROM snacks.snacks)) + 1"""
        )
    finally:
        _sql("ALTER TABLE snacks.orders ENABLE TRIGGER USER")
        _sql("ALTER TABLE snacks.purchases ENABLE TRIGGER USER")
    return time.perf_counter() - started


class _Stats:
    """Statistics requests of the bench: reads of a month, uncached (its month's generation
    bumped first, as a write would: the statement runs) or as they come; and writes (a new
    order of 3 snacks in the current month, then its cancellation) through the handler."""

    #: reads per write in the mixed workload, and the share of reads of the current month
    READS_PER_WRITE = 10
    CURRENT_MONTH_SHARE = 0.5

    def __init__(self, api: _Api, admin: str) -> None:
        self.api, self.admin = api, admin
        self.months = [(2025 + m // 12, m % 12 + 1) for m in range(24)]
        now = time.gmtime()
        self.current = (now.tm_year, now.tm_mon)
        self.rng = random.Random(4)
        self.snacks = [r[0] for r in _sql("SELECT uid::text FROM snacks.snacks ORDER BY id LIMIT 5000")]
        self.open_order: str | None = None
        self.member = _token(api, f"orderer-{os.getpid()}@bench.local")

    def read_event(self, mixed: bool) -> tuple[dict, tuple[int, int]]:
        if mixed and self.rng.random() < self.CURRENT_MONTH_SHARE:
            y, m = self.current
        else:
            y, m = self.rng.choice(self.months)
        query = {"year": str(y), "month": str(m)}
        return self.api.event("GET", "/snacks/statistics/", self.admin, query=query), (y, m)

    def bust(self, month: tuple[int, int]) -> None:
        from opsdeck import cache

        with contextlib.suppress(Exception):  # the "before" tree has no statistics cache
            cache.bump(f"snacks:stats:gen:{month[0]:04d}-{month[1]:02d}")

    def write(self) -> None:
        if self.open_order is None:
            for _ in range(20):
                items = [
                    {"snack_uid": u, "quantity": 1 + i} for i, u in enumerate(self.rng.sample(self.snacks, 3))
                ]
                r = self.api.handler(
                    self.api.event("POST", "/snacks/order/", self.member, {"items": items}), self.api.context
                )
                if r["statusCode"] == 201:
                    self.open_order = json.loads(r["body"])["uid"]
                    return
                assert r["statusCode"] == 409, r  # a snack in an open order: pick others
            raise AssertionError("no order could be placed")
        self.api(
            self.api.event("PUT", f"/snacks/order/{self.open_order}/", self.admin, {"status": "canceled"})
        )
        self.open_order = None

    def run(self, n: int, mode: str) -> tuple[list[float], list[float]]:
        """``n`` reads (``uncached`` | ``mixed``): their durations, and those of the writes."""
        reads, writes = [], []
        for i in range(n):
            if mode == "mixed" and i % self.READS_PER_WRITE == 0:
                started = time.perf_counter()
                self.write()
                writes.append(time.perf_counter() - started)
            event, month = self.read_event(mode == "mixed")
            if mode == "uncached":
                self.bust(month)
            started = time.perf_counter()
            self.api(event)
            reads.append(time.perf_counter() - started)
        return reads, writes


def _load_statistics() -> dict:
    orders = _int_env("BENCH_SNACKS_ORDERS", 100_000)
    load_s = _load_orders(orders)
    _vacuum()
    purchases = _sql("SELECT count(*) FROM snacks.purchases").scalar()
    return {
        "metric": "load_s",
        "subject": "orders + purchases (set-based SQL)",
        "orders": orders,
        "purchases": purchases,
        "value": round(load_s, 1),
        "unit": "s",
    }


def monthly_statistics(api: _Api, admin: str) -> Iterator[dict]:
    orders = _int_env("BENCH_SNACKS_ORDERS", 100_000)
    yield _load_statistics()
    requests = _int_env("BENCH_SNACKS_STATS_REQUESTS", 300)
    stats = _Stats(api, admin)
    stats.run(30, "mixed")  # warm-up
    for mode, label in (
        ("uncached", "every read after a write to its month: the statement runs"),
        ("mixed", f"1 write per {_Stats.READS_PER_WRITE} reads, half the reads of the current month"),
    ):
        reads, writes = stats.run(requests, mode)
        ms = _ms(reads)
        yield {
            "metric": "latency",
            "subject": f"GET /snacks/statistics?year=&month= via Lambda handler, {mode} ({label})",
            "orders": orders,
            "orders_per_month": orders // 24,
            "requests": requests,
            **ms,
            "value": ms["p95_ms"],
            "unit": "ms",
            "target_p95_ms": 50,
            **({"writes": len(writes), "write_p50_ms": _ms(writes)["p50_ms"]} if writes else {}),
        }


# ---------------------------------------------------------------------- argon2


def argon2_parameters() -> Iterator[dict]:
    from argon2 import PasswordHasher

    from functions.snacks import passwords

    n = _int_env("BENCH_SNACKS_ARGON2", 15)
    chosen = passwords.hasher()
    default = PasswordHasher()
    results = {}
    for label, hasher in (("chosen", chosen), ("library default", default)):
        stored = hasher.hash("correct horse battery staple")
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            hasher.verify(stored, "correct horse battery staple")
            samples.append(time.perf_counter() - started)
        results[label] = statistics.median(samples) * 1000
        yield {
            "metric": "argon2id_verify_ms",
            "subject": f"one password check, {label}",
            "time_cost": hasher.time_cost,
            "memory_kib": hasher.memory_cost,
            "parallelism": hasher.parallelism,
            "checks": n,
            "value": round(results[label], 1),
            "unit": "ms",
        }
    yield {
        "metric": "argon2id_ratio",
        "subject": "library default / chosen (median check time, same run)",
        "value": round(results["library default"] / results["chosen"], 2),
        "unit": "x",
    }


def run() -> Iterator[dict]:
    cases = _cases()
    url, why = redis_url()
    yield {
        "metric": "redis",
        "subject": "Redis behind the counts and the rate limits",
        "value": "fakeredis (in process)" if url.startswith("fakeredis://") else "redis server",
        "url": re.sub(r"//[^@/]*@", "//", url),
        "why": why,
    }
    if "argon2" in cases:
        yield from argon2_parameters()
    if not cases & {"toggle", "list", "stats"}:
        return
    with database(), _environment(url):
        api = _Api()
        with quiet_stdout():
            results = []
            if "toggle" in cases:
                results += list(reaction_toggle(api))
            if "list" in cases or "stats" in cases:
                member = _token(api, "lister@bench.local")
                admin = _token(api, "admin@bench.local", "admin")
            if "list" in cases or "stats" in cases:
                # statistics join snack names: the snacks are loaded either way
                results += list(snack_list(api, member, measure="list" in cases))
            if "stats" in cases:
                results += list(monthly_statistics(api, admin))
        yield from results
