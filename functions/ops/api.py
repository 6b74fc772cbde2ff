"""ops API: is the platform healthy, what does it consist of, and the ops console.

GET /ops/health        database and cache round trips; 503 problem+json naming what is down
GET /ops/functions     the function catalog: every function, its trigger and its resources
GET /ops/openapi.json  the OpenAPI document of the whole HTTP API (every capability's routes,
                       as API Gateway serves them; ``functions.ops.openapi``); ``/ops/docs`` shows it
/ops/console, /ops/overview, /ops/queues…, /ops/schedules…, /ops/invocations…, /ops/series,
/ops/audit, /ops/whoami: the ops console and its API (``functions.ops.console``, docs/console.md)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from functions import catalog
from opsdeck import cache, db
from opsdeck.api import create_app, lambda_handler, problem_response, problems
from opsdeck.errors import OpsdeckError, status_problem
from opsdeck.settings import platform

router = APIRouter(prefix="/ops", tags=["ops"])


class Check(BaseModel):
    status: Literal["ok", "down"]
    latency_ms: float | None = None
    error: str | None = None


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "stage": "local",
                    "checks": {
                        "database": {"status": "ok", "latency_ms": 0.61},
                        "cache": {"status": "ok", "latency_ms": 0.08},
                    },
                }
            ]
        }
    )

    status: Literal["ok"]
    stage: str
    checks: dict[str, Check]


class FunctionsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "functions": [
                        {
                            "name": "ops-api",
                            "capability": "ops",
                            "handler": "functions.ops.api.handler",
                            "description": "Health of database and cache; the function catalog",
                            "memory_mb": 256,
                            "timeout_s": 10,
                            "trigger": {
                                "kind": "http",
                                "routes": [{"route": "GET /ops/health", "authorizer": None}],
                                "api": "opsdeck",
                            },
                            "uses": {
                                "database": True,
                                "cache": True,
                                "sends_to": [],
                                "secrets": [],
                                "controls_schedules": [],
                                "invokes": [],
                            },
                        }
                    ]
                }
            ]
        }
    )

    functions: list[dict[str, Any]]


def _check(probe) -> dict[str, Any]:
    try:
        return {"status": "ok", "latency_ms": round(probe(), 2)}
    except OpsdeckError as exc:
        return {"status": "down", "error": exc.detail}


def health_checks() -> dict[str, Any]:
    checks = {"database": _check(db.ping), "cache": _check(cache.ping)}
    status = "ok" if all(c["status"] == "ok" for c in checks.values()) else "down"
    return {"status": status, "stage": platform().stage, "checks": checks}


@router.get(
    "/health",
    summary="Database and cache health",
    response_model=HealthOut,
    responses=problems(503, description="The database or the cache is down: `checks` says which"),
)
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


@router.get("/functions", summary="The function catalog", response_model=FunctionsOut)
async def functions() -> dict[str, Any]:
    return {"functions": [describe(f) for f in catalog.FUNCTIONS]}


def _whole_api() -> dict[str, Any]:
    from functions.ops import openapi

    return openapi.document()


from functions.ops.console import router as console_router  # noqa: E402 - after the routes above

app = create_app(
    title="opsdeck ops",
    base_path="/ops",
    routers=[router, console_router],
    description="Health and catalog of the platform; the ops console's API; the OpenAPI document of "
    "the whole HTTP API.",
    document=_whole_api,
)
handler = lambda_handler(app)
