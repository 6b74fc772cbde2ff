"""A simulated platform service (contract B): the seed's Node.js apps, as many as you like.

Mounted by the local cloud at ``/_sim/platform_sync`` (``environment()`` turns on local mode
for the platform_sync functions: plain http and loopback addresses are allowed *only* there),
served by tests and the bench with ``serve(app)`` (uvicorn in a thread on 127.0.0.1:0).
Development tooling: never imported by handlers, not bundled into Lambda.

Every simulated platform lives under its own key: ``POST /p/{key}/sync`` and
``POST /p/{key}/valid`` (any other last segment is a 404). Behaviour per key (or ``*`` for
every key), set with ``POST /_control/behaviour`` ``{"key": …, "latency_ms": …,
"error_rate": 0..1, "error_status": 503, "status": 200, "timeout_rate": 0..1, "hang": false,
"seed": 1}``:

* ``latency_ms`` — every answer waits that long;
* ``error_rate`` — that share of calls answers ``error_status`` (a 5xx is retried by the worker);
* ``status`` — the status of the other calls (e.g. 404 to make every call a ``failed``);
* ``timeout_rate`` — that share of calls waits ``timeout_s`` (default 60 s) before answering,
  longer than any read timeout: the worker sees a read timeout;
* ``hang`` — every call waits until the server stops (or ``timeout_s``).

``GET /_control/calls`` lists every call (key, task type, ``Idempotency-Key``, auth header
present, status); ``DELETE /_control/calls`` forgets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from localcloud.server import Served  # one server helper for every simulator
from localcloud.server import serve_simulator as serve


@dataclass
class Behaviour:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    status: int = 200
    timeout_rate: float = 0.0
    timeout_s: float = 60.0
    hang: bool = False


@dataclass
class Simulator:
    behaviours: dict[str, Behaviour] = field(default_factory=lambda: {"*": Behaviour()})
    calls: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(1))  # noqa: S311 - fault injection
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: asyncio.Event | None = None

    def behaviour(self, key: str) -> Behaviour:
        return self.behaviours.get(key) or self.behaviours.get("*") or Behaviour()

    def set(self, key: str, **values: Any) -> Behaviour:
        base = asdict(self.behaviours.get(key) or Behaviour())
        base.update({k: v for k, v in values.items() if k in base})
        self.behaviours[key] = Behaviour(**base)
        return self.behaviours[key]

    def calls_for(self, key: str | None = None, job_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                c
                for c in self.calls
                if (key is None or c["key"] == key) and (job_id is None or c["job_id"] == job_id)
            ]


def create_app(simulator: Simulator | None = None) -> Starlette:
    sim = simulator or Simulator()

    async def task(request: Request) -> JSONResponse:
        key, task_type = request.path_params["key"], request.path_params["task"]
        if task_type not in ("sync", "valid"):
            return JSONResponse({"error": "not found"}, status_code=404)
        b = sim.behaviour(key)
        roll = sim.rng.random()
        entry = {
            "key": key,
            "task_type": task_type,
            "job_id": request.headers.get("idempotency-key"),
            "auth": bool(request.headers.get("authorization") or request.headers.get("x-api-key")),
            "at": time.time(),
        }
        with sim.lock:
            sim.calls.append(entry)
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        if b.hang or roll < b.timeout_rate:
            entry["status"] = "hung"
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), timeout=b.timeout_s)
        status = b.error_status if sim.rng.random() < b.error_rate else b.status
        entry["status"] = status
        body = {
            "ok": status < 400,
            "task_type": task_type,
            "platform": key,
            "synced": 1 if status < 400 else 0,
        }
        return JSONResponse(body, status_code=status)

    async def behaviour(request: Request) -> JSONResponse:
        data = await request.json()
        key = str(data.pop("key", "*"))
        seed = data.pop("seed", None)
        if seed is not None:
            sim.rng.seed(seed)
        return JSONResponse({"key": key, **asdict(sim.set(key, **data))})

    async def calls(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            with sim.lock:
                sim.calls.clear()
            return JSONResponse({"calls": []})
        key = request.query_params.get("key")
        return JSONResponse({"calls": sim.calls_for(key, request.query_params.get("job_id"))})

    app = Starlette(
        routes=[
            Route("/p/{key}/{task}", task, methods=["POST"]),
            Route("/_control/behaviour", behaviour, methods=["POST"]),
            Route("/_control/calls", calls, methods=["GET", "DELETE"]),
        ]
    )
    app.state.simulator = sim
    return app


def environment(base_url: str) -> dict[str, str]:
    """Local mode for the platform_sync functions: the simulator is plain http on 127.0.0.1."""
    return {"OUTBOUND_ALLOW_LOCAL": "true"}


def platform_url(base_url: str, key: str) -> str:
    return f"{base_url.rstrip('/')}/p/{key}"


__all__ = [
    "Behaviour",
    "Served",
    "Simulator",
    "create_app",
    "environment",
    "platform_url",
    "serve",
]
