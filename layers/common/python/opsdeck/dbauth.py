"""IAM authentication tokens for RDS Proxy: minted per new connection, reused within their life.

On AWS the proxy requires IAM authentication (``DATABASE_AUTH=iam``): a function holds no
database password; each *new* connection presents a token — a SigV4-presigned
``connect`` request for ``DBUser=<its capability's role>``, valid 15 minutes — as its password.

* **Warm path: nothing.** A token is needed only to open a connection, and the container keeps
  its pooled connection; an established connection outlives its token.
* **New connections reuse the token** minted less than ``REFRESH_AFTER_S`` (10 min) ago, so a
  reconnect after an idle drop costs no signing either; the margin to 15 minutes absorbs clock
  skew and a slow handshake.
* **Cost when minting** (BENCHMARKS.md, "privilege"): signing is local (no network call). It uses
  botocore's SigV4 query signer directly — exactly what ``rds.generate_db_auth_token`` does
  (tests/unit/test_dbauth.py checks the two tokens are identical) without creating an RDS client,
  whose service model alone costs hundreds of milliseconds of cold start.
* ``reset()`` forgets tokens and credentials (tests; SnapStart's after-restore hook).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

TOKEN_LIFETIME_S = 900
REFRESH_AFTER_S = 600

_lock = threading.Lock()
_tokens: dict[tuple[str, int, str, str], tuple[str, float]] = {}
_credentials: Any = None
minted = 0  # tokens minted by this container (tests and the benchmark read it)


def _session_credentials() -> Any:
    global _credentials
    if _credentials is None:
        import botocore.session

        from .errors import ConfigError

        found = botocore.session.get_session().get_credentials()
        if found is None:
            raise ConfigError("IAM database authentication needs AWS credentials (none found)")
        _credentials = found
    return _credentials


def generate(host: str, port: int, user: str, region: str) -> str:
    """A fresh token (``rds.generate_db_auth_token``'s, without an RDS client)."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method="GET", url=f"https://{host}:{port}/?Action=connect&DBUser={quote(user, safe='')}"
    )
    SigV4QueryAuth(
        _session_credentials().get_frozen_credentials(), "rds-db", region, expires=TOKEN_LIFETIME_S
    ).add_auth(request)
    return request.url[len("https://") :]


def token(host: str, port: int, user: str, region: str) -> str:
    """The token for a new connection: the cached one while it is younger than ``REFRESH_AFTER_S``."""
    global minted
    key = (host, int(port), user, region)
    now = time.monotonic()
    cached = _tokens.get(key)
    if cached is not None and now - cached[1] < REFRESH_AFTER_S:
        return cached[0]
    with _lock:
        cached = _tokens.get(key)
        if cached is not None and now - cached[1] < REFRESH_AFTER_S:
            return cached[0]
        fresh = generate(host, int(port), user, region)
        _tokens[key] = (fresh, now)
        minted += 1
        return fresh


def reset() -> None:
    global _credentials
    with _lock:
        _tokens.clear()
        _credentials = None
