"""ops API: is the platform healthy, what does it consist of, and the ops console.

GET /ops/health     database and cache round trips; 503 problem+json naming what is down
GET /ops/functions  the function catalog: every function, its trigger and its resources
/ops/console, /ops/overview, /ops/queues…, /ops/schedules…, /ops/invocations…, /ops/series,
/ops/audit, /ops/whoami: the ops console and its API (``functions.ops.console``, docs/console.md)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from functions import catalog
from opsdeck import cache, db
from opsdeck.api import create_app, lambda_handler, problem_response
from opsdeck.errors import OpsdeckError, status_problem
from opsdeck.settings import platform

router = APIRouter(prefix="/ops", tags=["ops"])


def _check(probe) -> dict[str, Any]:
    try:
        return {"status": "ok", "latency_ms": round(probe(), 2)}
    except OpsdeckError as exc:
        return {"status": "down", "error": exc.detail}


def health_checks() -> dict[str, Any]:
    checks = {"database": _check(db.ping), "cache": _check(cache.ping)}
    status = "ok" if all(c["status"] == "ok" for c in checks.values()) else "down"
    return {"status": status, "stage": platform().stage, "checks": checks}


@router.get("/health", summary="Database and cache health")
async def health() -> JSONResponse:
    checks = {"database": _check(db.ping), "cache": _check(cache.ping)}
    if all(c["status"] == "ok" for c in checks.values()):
        return JSONResponse({"status": "ok", "stage": platform().stage, "checks": checks})
    down = ", ".join(name for name, c in checks.items() if c["status"] != "ok")
    return problem_response(
        status_problem(503, f"unavailable: {down}", instance="/ops/health", checks=checks)
    )


def describe(function: catalog.Function) -> dict[str, Any]:
    trigger = {"kind": function.trigger.kind}
    for f in dataclasses.fields(function.trigger):
        value = getattr(function.trigger, f.name)
        if f.name == "routes":
            value = [{"route": r.key, "authorizer": r.authorizer} for r in value]
        elif isinstance(value, dict | tuple) or hasattr(value, "items"):
            value = dict(value) if hasattr(value, "items") else list(value)
        trigger[f.name] = value
    return {
        "name": function.name,
        "capability": function.capability,
        "handler": function.handler,
        "description": function.description,
        "memory_mb": function.memory_mb,
        "timeout_s": function.timeout_s,
        "trigger": trigger,
        "uses": {
            "database": function.database,
            "cache": function.cache,
            "sends_to": list(function.sends_to),
            "secrets": list(function.secrets),
            "controls_schedules": list(function.controls_schedules),
            "invokes": list(function.invokes),
        },
    }


@router.get("/functions", summary="The function catalog")
async def functions() -> dict[str, Any]:
    return {"functions": [describe(f) for f in catalog.FUNCTIONS]}


from functions.ops.console import router as console_router  # noqa: E402 - after the routes above

app = create_app(title="opsdeck ops", base_path="/ops", routers=[router, console_router])
handler = lambda_handler(app)
