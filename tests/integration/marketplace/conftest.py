"""Marketplace integration harness: the simulator as a real HTTP server, functions through their entry points.

* ``sim`` — a fresh ``Simulator`` (no background order flow, published quotas enforced)
  served by uvicorn on 127.0.0.1:0 in a thread; its URL in ``sim.url``.
* ``marketplace`` — the simulator's endpoints with the credentials as plain variables
  (``simulator.local_environment(url)``; ``test_local_cloud.py`` covers the Secrets Manager
  path) plus the database and Redis of the test, and helpers to invoke the scheduled
  handlers with the sample events of ``events/`` and to call the HTTP API through Mangum.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.marketplace import api, inventory_sync, orders_sync, simulator, slack, spapi
from localcloud.events import http_event
from tests.support import LambdaContext, env, load_event

OPERATOR = {"sub": "operator-1", "roles": ["marketplace-operator"], "iss": "opsdeck-local", "aud": "opsdeck"}


@pytest.fixture
def sim() -> Iterator[simulator.Simulator]:
    instance = simulator.Simulator(seed=1, skus=12)
    with simulator.serve(simulator.create_app(instance)) as served:
        instance.url = served.url  # type: ignore[attr-defined]
        yield instance


@dataclass
class Marketplace:
    sim: simulator.Simulator
    db: Any

    # --------------------------------------------------------------- invoking

    def sync_orders(self, timeout_s: int = 120) -> dict[str, Any]:
        event = load_event("marketplace-orders-sync/scheduled.json")
        return orders_sync.handler(event, LambdaContext("marketplace-orders-sync", timeout_s=timeout_s))

    def sync_inventory(self, timeout_s: int = 120) -> dict[str, Any]:
        event = load_event("marketplace-inventory-sync/scheduled.json")
        return inventory_sync.handler(event, LambdaContext("marketplace-inventory-sync", timeout_s=timeout_s))

    def http(self, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        response = api.handler(event, LambdaContext("marketplace-api", timeout_s=29))
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        ctype = response["headers"].get("content-type", "")
        parsed = json.loads(body) if body and "json" in ctype else body
        return response["statusCode"], response["headers"], parsed

    def get(self, path: str, query: str = "", **kw: Any) -> tuple[int, dict[str, str], Any]:
        return self.http(http_event("GET", path, query=query, **kw))

    def post_sync(self, claims: dict[str, Any] | None = OPERATOR) -> tuple[int, dict[str, str], Any]:
        return self.http(http_event("POST", "/marketplace/orders/sync", jwt_claims=claims))

    # ------------------------------------------------------------------ data

    def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        return self.db.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        return list(self.db.execute(text(sql), params))

    def orders(
        self, n: int, *, ago_s: float = 3600, until_ago_s: float = 600, status: str = "Unshipped"
    ) -> list[str]:
        now = time.time()
        return self.sim.add_orders(n, start=now - ago_s, end=now - until_ago_s, status=status)


def _environment(sim_url: str, **overrides: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {**simulator.local_environment(sim_url), **overrides}
    values.setdefault("MARKETPLACE_SPAPI_SECRET_ID", None)
    values.setdefault("MARKETPLACE_SLACK_SECRET_ID", None)
    return values


@pytest.fixture
def marketplace(sim, db, redis_url) -> Iterator[Marketplace]:
    spapi.reset()
    slack.reset()
    with env(**_environment(sim.url)):
        yield Marketplace(sim, db)
    spapi.reset()
    slack.reset()


@pytest.fixture
def configure():
    """``with configure(VAR=value): …`` — more environment on top of ``marketplace``'s."""

    def apply(**values: str | None):
        spapi.reset()
        slack.reset()
        return env(**values)

    return apply
