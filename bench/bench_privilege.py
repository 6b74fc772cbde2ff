"""IAM authentication to the database against password authentication, side by side.

What a request pays for IAM tokens, measured on the client (RDS Proxy's own check of a token
or password happens in AWS and is not measurable here; the local server trusts the
connection, so both modes run the same wire protocol):

* ``warm``: requests on the container's pooled connection (``db.transaction`` + ``SELECT 1``),
  per request, and how many tokens were minted meanwhile (target: none);
* ``cold``: a new container's first connection (engine, connect, for IAM: AWS credentials +
  one token), and a reconnect (the pool lost its connection: the cached token is reused);
* ``token``: minting in a fresh process — ``opsdeck.dbauth`` (botocore's SigV4 signer) against
  boto3's ``rds.generate_db_auth_token`` (which first builds an RDS client).

Knobs: ``BENCH_PRIVILEGE_REQUESTS`` (2,000), ``BENCH_PRIVILEGE_CONNECTS`` (30).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.support import ROOT, database, lambda_like_env, percentiles

REQUESTS = int(os.environ.get("BENCH_PRIVILEGE_REQUESTS", "2000"))
CONNECTS = int(os.environ.get("BENCH_PRIVILEGE_CONNECTS", "30"))
AWS = {"AWS_ACCESS_KEY_ID": "AKIABENCH", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench"}


def _mode_env(mode: str, url: str) -> dict[str, str | None]:
    from sqlalchemy.engine import make_url

    if mode == "password":
        return {"DATABASE_URL": url, "DATABASE_AUTH": None}
    u = make_url(url)
    return {
        "DATABASE_URL": None,
        "DATABASE_AUTH": "iam",
        "DATABASE_HOST": u.host,
        "DATABASE_PORT": str(u.port or 5432),
        "DATABASE_NAME": u.database,
        "DATABASE_USER": u.username,
        "AWS_REGION": "eu-west-1",
        **AWS,
    }


def _apply(env: dict[str, str | None]) -> dict[str, str | None]:
    from opsdeck import db, settings

    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    settings.platform.cache_clear()
    db.reset()
    return saved


def _request() -> None:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(text("SELECT 1")).scalar()


def _measure(mode: str, url: str) -> Iterator[dict[str, Any]]:
    from opsdeck import db, dbauth

    saved = _apply(_mode_env(mode, url))
    try:
        _request()  # the container's first request opens the connection
        minted = dbauth.minted
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            _request()
            samples.append(time.perf_counter() - started)
        yield {
            "bench": "privilege",
            "case": "warm",
            "auth": mode,
            "requests": REQUESTS,
            "tokens_minted": dbauth.minted - minted,
            **percentiles(samples),
        }
        cold, reconnect = [], []
        for _ in range(CONNECTS):
            db.reset()  # a new container: engine, credentials and tokens forgotten
            started = time.perf_counter()
            _request()
            cold.append(time.perf_counter() - started)
            db.engine().dispose()  # the proxy dropped the idle connection: same container reconnects
            started = time.perf_counter()
            _request()
            reconnect.append(time.perf_counter() - started)
        yield {
            "bench": "privilege",
            "case": "cold_connect",
            "auth": mode,
            "runs": CONNECTS,
            **percentiles(cold),
        }
        yield {
            "bench": "privilege",
            "case": "reconnect",
            "auth": mode,
            "runs": CONNECTS,
            **percentiles(reconnect),
        }
    finally:
        _apply(saved)


_MINT_SCRIPT = """
import json, time
host, user = "p.proxy-x.eu-west-1.rds.amazonaws.com", "opsdeck_marketplace_app"
t0 = time.perf_counter()
if {boto3!r}:
    import boto3
    rds = boto3.session.Session().client("rds", region_name="eu-west-1")
    t1 = time.perf_counter()
    rds.generate_db_auth_token(host, 5432, user, "eu-west-1")
else:
    from opsdeck import dbauth
    dbauth._session_credentials()
    t1 = time.perf_counter()
    dbauth.generate(host, 5432, user, "eu-west-1")
t2 = time.perf_counter()
print(json.dumps({{"setup_ms": (t1 - t0) * 1e3, "sign_ms": (t2 - t1) * 1e3}}))
"""


def _fresh_token(boto3: bool, runs: int = 5) -> dict[str, float]:
    setup, sign = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _MINT_SCRIPT.format(boto3=boto3)],
            env=lambda_like_env(AWS),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = json.loads(out)
        setup.append(got["setup_ms"])
        sign.append(got["sign_ms"])
    return {"setup_ms": round(statistics.median(setup), 1), "sign_ms": round(statistics.median(sign), 2)}


def run() -> Iterator[dict[str, Any]]:
    with database() as url:
        for mode in ("password", "iam"):
            yield from _measure(mode, url)
    for boto3 in (False, True):
        yield {
            "bench": "privilege",
            "case": "token_fresh_process",
            "via": "rds.generate_db_auth_token (boto3 client)"
            if boto3
            else "opsdeck.dbauth (botocore signer)",
            "runs": 5,
            **_fresh_token(boto3),
        }
