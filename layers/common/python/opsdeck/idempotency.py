"""Powertools Idempotency backed by the shared Redis.

For side effects that are not naturally idempotent (a Slack message, a call that
creates something upstream):

    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from opsdeck.idempotency import config, persistence

    @idempotent_function(data_keyword_argument="order", persistence_store=persistence(),
                         config=config(expires_after_seconds=86400))
    def notify(order: dict) -> dict: ...

The persistence layer talks to ``opsdeck.cache.client()`` through a proxy resolved on
first use, so decorating a function at import time opens no connection.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer


class _CacheClient:
    """The three calls Powertools makes, forwarded to the container's Redis client."""

    def get(self, name: Any) -> Any:
        from .cache import client

        return client().get(name)

    def set(self, name: Any, value: Any, ex: Any = None, px: Any = None, nx: bool = False) -> Any:
        from .cache import client

        return client().set(name, value, ex=ex, px=px, nx=nx)

    def delete(self, *names: Any) -> Any:
        from .cache import client

        return client().delete(*names)


def persistence() -> CachePersistenceLayer:
    """A NEW idempotency store on the container's Redis, for ONE decorated function.

    Powertools binds a store to the first config and function that use it
    (``configure`` is a no-op afterwards), so a store shared by two functions would
    silently apply the first one's key expression and expiry to the second.
    """
    # Powertools 3.x: CachePersistenceLayer is an alias of the deprecated RedisCachePersistenceLayer,
    # so even the recommended name warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return CachePersistenceLayer(client=_CacheClient())


def config(
    *, expires_after_seconds: int = 3600, key_jmespath: str | None = None, **kwargs: Any
) -> IdempotencyConfig:
    """An ``IdempotencyConfig`` with opsdeck's defaults (no local in-memory cache: Redis is shared)."""
    return IdempotencyConfig(
        expires_after_seconds=expires_after_seconds,
        event_key_jmespath=key_jmespath or "",
        use_local_cache=False,
        **kwargs,
    )
