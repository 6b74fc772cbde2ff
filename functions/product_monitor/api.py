"""``product-monitor-api``: the seed's REST API (§3a) under ``/product-monitor``, cache-first.

Reads (role ``viewer``, ``operator`` or ``admin``)::

    GET /v1/products/{asin}                   summary + latest metrics     product:{asin}:summary
    GET /v1/products/{asin}/metrics?range=    7d|30d|90d daily points      product:{asin}:metrics:daily:{r}
    GET /v1/competitions/{asin}               own vs each competitor       compare:{asin}:{competitor}
    GET /v1/competitions/{asin}/report        latest versioned report      recommendation:{asin}:latest
    GET /v1/competitions/{asin}/report/export ?format=csv|json → S3 object + presigned download URL
    GET /v1/recommendations/{asin}            latest recommendations       recommendation:{asin}:latest
    GET /v1/tracked-asins                     keyset pages
    GET /v1/jobs/{id}                         an ingest run (with its jobs) or one job

Writes (``operator`` or ``admin``): ``POST /v1/recommendations/{asin}/refresh``,
``POST /v1/tracked-asins``, ``DELETE /v1/tracked-asins/{asin}``, ``POST /v1/competitor-links``,
``DELETE /v1/competitor-links/{asin}/{competitor_asin}``, ``POST /v1/ingest-runs``.
``GET /v1/metrics`` (Prometheus text, ``operator``/``admin``: it shows costs) and
``GET /v1/health`` (no token: load balancers and probes).

Every cached read goes through ``opsdeck.cache.get_or_load`` under the ASIN's generation
counter (``cachekeys``): fresh → served; stale → served with ``stale_at`` while one caller
reloads; miss → database, then stored; Redis down → database. Every response has an
``ETag`` (the cached value's, else a hash of the body) and ``If-None-Match`` on a GET answers
304 without a body. ASINs are a declared path pattern (``^[A-Z0-9]{10}$``: 422 otherwise) and
request bodies are limited (``MAX_BODY_BYTES``, 413). JWTs are verified here (``opsdeck.auth``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware

from opsdeck import auth, cache, db
from opsdeck import cursor as cursor_codec
from opsdeck.api import create_app, lambda_handler
from opsdeck.auth import Principal
from opsdeck.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)
from opsdeck.jsonutil import dumps
from opsdeck.lazy import lazy_import
from opsdeck.openapi import problems
from opsdeck.params import Cursor

from . import cachekeys, edge
from .domain import ASIN_PATTERN
from .edge import Edge, matches
from .settings import READ_ROLES, WRITE_ROLES

repository = lazy_import("functions.product_monitor.repository")
reports = lazy_import("functions.product_monitor.reports")
ingest = lazy_import("functions.product_monitor.ingest")
telemetry = lazy_import("functions.product_monitor.telemetry")
exports = lazy_import("functions.product_monitor.exports")
views = lazy_import("functions.product_monitor.views")

BASE = "/product-monitor"
CENT = Decimal("0.01")
JSON = "application/json"

_ASIN_DOC = "Amazon ASIN: 10 upper-case letters/digits"
# the examples name what ``demo.contract`` seeds (docs/http-api.md)
Asin = Annotated[str, Path(pattern=ASIN_PATTERN, description=_ASIN_DOC, examples=["B0CX23V2ZK"])]
UntrackAsin = Annotated[str, Path(pattern=ASIN_PATTERN, description=_ASIN_DOC, examples=["B0UNTRACK1"])]
CompetitorAsin = Annotated[str, Path(pattern=ASIN_PATTERN, description=_ASIN_DOC, examples=["B0UNLINK01"])]
RunId = Annotated[
    uuid.UUID, Path(description="an ingest run or job id", examples=["3c1e2a7b-7f4d-4e8a-b1c2-9d0e8f7a6b01"])
]
AsinItem = Annotated[str, Field(pattern=ASIN_PATTERN, examples=["B0CX23V2ZK"])]

NOT_FOUND = problems(NotFound)
WRITE = problems(413)


viewer = auth.require_roles(*READ_ROLES, any_of=True)
operator = auth.require_roles(*WRITE_ROLES, any_of=True)
Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]

router = APIRouter(prefix=f"{BASE}/v1", tags=["product monitor"])


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------- bodies


class TrackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"asins": ["B0CX23V2ZK"]}]})
    asins: list[AsinItem] = Field(min_length=1, max_length=500, examples=[["B0CX23V2ZK", "B09B8V1LZ3"]])


class LinkIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"asin": "B0CX23V2ZK", "competitor_asin": "B09B8V1LZ3"}]},
    )
    asin: AsinItem
    competitor_asin: AsinItem


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"asins": ["B0CX23V2ZK"]}]})
    asins: list[AsinItem] | None = Field(
        None, min_length=1, max_length=5000, description="default: every tracked ASIN and its competitors"
    )
    run_id: uuid.UUID | None = Field(
        None, description="idempotency: a run id already planned is answered as it stands, not planned again"
    )


# -------------------------------------------------------------------- helpers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type=JSON, headers=headers)


def _cached(
    request: Request,
    key: str,
    loader: Callable[[], Any],
    ttl: cachekeys.Ttl,
    generations: tuple[str, ...],
) -> Response:
    entry = cache.get_or_load(key, loader, fresh_s=ttl.fresh_s, stale_s=ttl.stale_s, generations=generations)
    request.state.cache_state = entry.state
    etag = "W/" + entry.etag
    headers = {"etag": etag, "x-cache": entry.state, "cache-control": "private, no-cache"}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body = entry.value
    if entry.state == "stale" and isinstance(body, dict) and entry.stale_at is not None:
        body = {**body, "stale_at": datetime.fromtimestamp(entry.stale_at, UTC).isoformat()}
    return _json(body, headers=headers)


def _summary(asin: str) -> dict[str, Any]:
    with db.transaction() as conn:
        found = views.summaries(conn, [asin])
    if asin not in found:
        raise NotFound(f"unknown ASIN {asin}")
    return found[asin]


def _metrics(asin: str, range_: str) -> dict[str, Any]:
    return views.metrics(asin, range_)


def _links(asin: str) -> dict[str, Any]:
    with db.transaction() as conn:
        if not repository.exists(conn, asin):
            raise NotFound(f"unknown ASIN {asin}")
        return {"competitors": repository.competitors(conn, asin)}


def _pair(asin: str, competitor: str) -> dict[str, Any]:
    with db.transaction() as conn:
        latest = repository.latest_metrics(conn, [asin, competitor])
    own, other = latest.get(asin) or {}, latest.get(competitor) or {}

    def diff(field: str) -> Any:
        a, b = own.get(field), other.get(field)
        return None if a is None or b is None else a - b

    price_gap = None
    if own.get("price") is not None and other.get("price"):
        price_gap = format(((own["price"] - other["price"]) / other["price"] * 100).quantize(CENT), "f")
    return {
        "competitor_asin": competitor,
        "title": other.get("title"),
        "own": {k: own.get(k) for k in ("price", "rating", "reviews_count", "bsr", "in_stock", "date")},
        "competitor": {
            k: other.get(k) for k in ("price", "rating", "reviews_count", "bsr", "in_stock", "date")
        },
        "price_diff": diff("price"),
        "price_gap_pct": price_gap,
        "rating_diff": diff("rating"),
        "bsr_diff": diff("bsr"),
    }


def _recommendation(asin: str) -> dict[str, Any]:
    with db.transaction() as conn:
        row = repository.latest_recommendation(conn, asin)
        if row is None:
            if not repository.exists(conn, asin):
                raise NotFound(f"unknown ASIN {asin}")
            raise NotFound(f"no report for {asin} yet (it is generated after its first ingest or a refresh)")
    return row


# ----------------------------------------------------------------------- reads


@router.get(
    "/products/{asin}",
    summary="Product summary with the latest metrics and review summary",
    responses=NOT_FOUND,
)
async def get_product(request: Request, asin: Asin, _: Viewer) -> Response:
    return _cached(
        request, cachekeys.summary(asin), lambda: _summary(asin), cachekeys.SUMMARY, (cachekeys.gen(asin),)
    )


@router.get("/products/{asin}/metrics", summary="Daily metrics over a range", responses=NOT_FOUND)
async def get_metrics(
    request: Request,
    asin: Asin,
    _: Viewer,
    range: Literal["7d", "30d", "90d"] = Query("30d"),
) -> Response:
    return _cached(
        request,
        cachekeys.metrics(asin, range),
        lambda: _metrics(asin, range),
        cachekeys.METRICS,
        (cachekeys.gen(asin),),
    )


@router.get("/competitions/{asin}", summary="The product against each linked competitor", responses=NOT_FOUND)
async def get_competition(request: Request, asin: Asin, _: Viewer) -> Response:
    g = cachekeys.gen(asin)
    found = cache.get_or_load(
        cachekeys.compare(asin, "_links"), lambda: _links(asin), fresh_s=300, stale_s=900, generations=(g,)
    )
    links, entries = found.value, [found]
    pairs, tags = [], []
    for competitor in links["competitors"]:
        entry = cache.get_or_load(
            cachekeys.compare(asin, competitor),
            lambda c=competitor: _pair(asin, c),
            fresh_s=cachekeys.COMPARE.fresh_s,
            stale_s=cachekeys.COMPARE.stale_s,
            generations=(g, cachekeys.gen(competitor)),
        )
        pairs.append(entry.value)
        entries.append(entry)
        tags.append(entry.etag)
    states = {e.state for e in entries}
    state = "miss" if "miss" in states else ("stale" if "stale" in states else "fresh")
    request.state.cache_state = state
    etag = 'W/"' + hashlib.blake2b("|".join(tags).encode(), digest_size=12).hexdigest() + '"'
    headers = {"etag": etag, "x-cache": state, "cache-control": "private, no-cache"}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body: dict[str, Any] = {"asin": asin, "competitors": pairs}
    stale = [e.stale_at for e in entries if e.state == "stale" and e.stale_at is not None]
    if stale:  # the oldest of the parts served stale (each is being refreshed by one caller)
        body["stale_at"] = datetime.fromtimestamp(min(stale), UTC).isoformat()
    return _json(body, headers=headers)


@router.get(
    "/competitions/{asin}/report", summary="The latest competitive report (versioned)", responses=NOT_FOUND
)
async def get_report(request: Request, asin: Asin, _: Viewer) -> Response:
    def load_report() -> dict[str, Any]:
        return _recommendation(asin)

    response = _cached(
        request, cachekeys.recommendation(asin), load_report, cachekeys.RECOMMENDATION, (cachekeys.gen(asin),)
    )
    return _project(response, ("asin", "version", "generator", "generated_at", "report", "stale_at"))


@router.get(
    "/competitions/{asin}/report/export",
    summary="Export the latest report (CSV or JSON) to S3; returns a presigned download URL",
    responses=NOT_FOUND,
)
async def export_report(asin: Asin, _: Viewer, format: Literal["csv", "json"] = Query("csv")) -> Response:
    rec = _recommendation(asin)
    return _json(exports.export(rec, format), headers={"cache-control": "no-store"})


@router.get("/recommendations/{asin}", summary="The latest recommendations (versioned)", responses=NOT_FOUND)
async def get_recommendations(request: Request, asin: Asin, _: Viewer) -> Response:
    response = _cached(
        request,
        cachekeys.recommendation(asin),
        lambda: _recommendation(asin),
        cachekeys.RECOMMENDATION,
        (cachekeys.gen(asin),),
    )
    return _project(
        response, ("asin", "version", "generator", "generated_at", "trigger", "items", "stale_at")
    )


def _project(response: Response, fields: tuple[str, ...]) -> Response:
    """Both endpoints share ``recommendation:{asin}:latest``; each shows its part."""
    if response.status_code != 200:
        return response
    import json

    body = json.loads(response.body)
    headers = {k: v for k, v in response.headers.items() if k in ("etag", "x-cache", "cache-control")}
    return _json({k: body[k] for k in fields if k in body}, headers=headers)


@router.get("/tracked-asins", summary="Tracked ASINs, in ASIN order")
async def list_tracked(
    _: Viewer,
    limit: int = Query(100, ge=1, le=500),
    cursor: Cursor | None = Query(None, max_length=cursor_codec.MAX_LENGTH),
) -> Response:
    position = cursor_codec.decode(cursor, "t")
    after = None
    if position is not None:
        if len(position) != 1 or not isinstance(position[0], str):
            raise InvalidInput("cursor is malformed")
        after = position[0]
    with db.transaction() as conn:
        rows = repository.tracked_page(conn, after, limit + 1)
    page = rows[:limit]
    nxt = cursor_codec.encode("t", page[-1]["asin"]) if len(rows) > limit else None
    return _json({"items": page, "next_cursor": nxt})


@router.get("/jobs/{id}", summary="An ingest run (with its jobs) or one ingest job", responses=NOT_FOUND)
async def get_job(id: RunId, _: Viewer) -> Response:
    with db.transaction() as conn:
        run = repository.run_view(conn, id)
        if run is not None:
            errors = [dict(e, job_id=str(j["id"])) for j in run["jobs"] for e in (j["errors"] or [])]
            body = {"resource": "ingest_run", **_plain(run), "errors": errors[:500]}
            return _json(body)
        job = repository.job_view(conn, id)
    if job is None:
        raise NotFound(f"no ingest run or job {id}")
    return _json({"resource": "ingest_job", **_plain(job)})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# ---------------------------------------------------------------------- writes


@router.post(
    "/recommendations/{asin}/refresh",
    summary="Regenerate the report and recommendations now",
    responses={**NOT_FOUND, **WRITE},
)
async def refresh_recommendations(asin: Asin, principal: Operator) -> Response:
    with db.transaction() as conn:
        if not repository.exists(conn, asin):
            raise NotFound(f"unknown ASIN {asin}")
        changed = reports.regenerate(conn, [asin], trigger=f"refresh:{principal.subject}", force=True)
        if not changed:
            raise NotFound(f"{asin} is not tracked (only tracked ASINs get recommendations)")
        row = repository.latest_recommendation(conn, asin)
    cachekeys.invalidate([asin])
    return _json(row)


@router.post("/tracked-asins", summary="Track ASINs", status_code=201, responses=WRITE)
async def track(principal: Operator, body: TrackIn = Body(...)) -> Response:
    asins = sorted(set(body.asins))
    with db.transaction() as conn:
        added = repository.track(conn, asins, principal.subject, utcnow())
    cachekeys.invalidate(added)
    return _json({"added": added, "already_tracked": sorted(set(asins) - set(added))}, status=201)


@router.delete("/tracked-asins/{asin}", summary="Stop tracking an ASIN", status_code=204, responses=NOT_FOUND)
async def untrack(asin: UntrackAsin, _: Operator) -> Response:
    with db.transaction() as conn:
        if not repository.untrack(conn, asin):
            raise NotFound(f"{asin} is not tracked")
    cachekeys.invalidate([asin])
    return Response(status_code=204)


@router.post(
    "/competitor-links",
    summary="Link a competitor to an ASIN",
    status_code=201,
    responses={**WRITE, **problems(Conflict), 200: {"description": "The link existed already"}},
)
async def add_link(principal: Operator, body: LinkIn = Body(...)) -> Response:
    if body.asin == body.competitor_asin:  # not expressible in the schema: a conflict with the rules
        raise Conflict("an ASIN cannot be its own competitor")
    with db.transaction() as conn:
        created = repository.link(conn, body.asin, body.competitor_asin, principal.subject, utcnow())
    ingest.after_write([body.asin], trigger=f"link:{principal.subject}")
    cachekeys.invalidate([body.asin, body.competitor_asin])
    return _json(
        {"asin": body.asin, "competitor_asin": body.competitor_asin, "created": created},
        status=201 if created else 200,
    )


@router.delete(
    "/competitor-links/{asin}/{competitor_asin}",
    summary="Unlink a competitor",
    status_code=204,
    responses=NOT_FOUND,
)
async def remove_link(asin: Asin, competitor_asin: CompetitorAsin, principal: Operator) -> Response:
    with db.transaction() as conn:
        if not repository.unlink(conn, asin, competitor_asin):
            raise NotFound(f"{competitor_asin} is not a competitor of {asin}")
    ingest.after_write([asin], trigger=f"unlink:{principal.subject}")
    cachekeys.invalidate([asin, competitor_asin])
    return Response(status_code=204)


@router.post("/ingest-runs", summary="Start an ingest run now", status_code=202, responses=WRITE)
async def start_run(principal: Operator, body: RunIn = Body(default_factory=RunIn)) -> Response:
    result = ingest.plan("manual", f"api:{principal.subject}", asins=body.asins, run_id=body.run_id)
    location = f"{BASE}/v1/jobs/{result['run_id']}" if result["run_id"] else None
    return _json(result, status=202, headers={"location": location} if location else None)


# -------------------------------------------------------------------- platform


@router.get("/health", summary="Database and cache reachability, last successful run")
async def health() -> Response:
    checks: dict[str, Any] = {}
    for name, probe in (("database", db.ping), ("cache", cache.ping)):
        try:
            checks[name] = {"status": "up", "latency_ms": round(probe(), 3)}
        except Exception as exc:
            checks[name] = {"status": "down", "error": type(exc).__name__}
    last = None
    if checks["database"]["status"] == "up":
        with db.transaction() as conn:
            last = repository.ingest_totals(conn)["last_run_finished_at"]
    status = "ok" if checks["database"]["status"] == "up" else "degraded"
    return _json(
        {"status": status, "checks": checks, "last_run_finished_at": last},
        status=200 if status == "ok" else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics of the whole deployment",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}},
)
async def metrics(_: Operator) -> Response:
    with db.transaction() as conn:
        totals = repository.ingest_totals(conn)
    return Response(telemetry.render(totals), media_type="text/plain; version=0.0.4; charset=utf-8")


# ------------------------------------------------------------------ middleware


# ------------------------------------------------------------------ documentation

A_ASIN, A_RIVAL = "B0CX23V2ZK", "B09B8V1LZ3"
_RUN = "3c1e2a7b-7f4d-4e8a-b1c2-9d0e8f7a6b01"
_JOB = "0f9d7c52-5b8e-4c61-9a53-2b6f3c1d0a01"
_LATEST = {
    "date": "2026-12-03",
    "price": {"amount": "49.9900", "currency": "USD"},
    "list_price": {"amount": "59.9900", "currency": "USD"},
    "rating": "4.70",
    "reviews_count": 12034,
    "bsr": 3,
    "bsr_category": "Smart Speakers",
    "in_stock": True,
    "captured_at": "2026-12-03T00:31:12.004+00:00",
}
_REC = {
    "asin": A_ASIN,
    "version": 3,
    "generator": "rules",
    "generated_at": "2026-12-03T00:32:00+00:00",
    "trigger": f"job:{_JOB}",
    "items": [{"code": "price_above_market", "priority": "high", "text": "Price is 12.5% above the median."}],
}
_POINT = {
    "date": "2026-12-03",
    "price": "49.9900",
    "currency": "USD",
    "rating": "4.70",
    "reviews_count": 12034,
}
#: (method, path under /v1) → the example of its success body
EXAMPLES: dict[tuple[str, str], Any] = {
    ("GET", "/products/{asin}"): {
        "asin": A_ASIN,
        "tracked": True,
        "title": "Echo Dot (5th Gen)",
        "brand": "Amazon",
        "category": "Smart Speakers",
        "breadcrumbs": ["Electronics", "Smart Home", "Smart Speakers"],
        "image_url": "https://m.media-amazon.com/images/I/B0CX23V2ZK.jpg",
        "url": "https://www.amazon.com/dp/B0CX23V2ZK",
        "updated_at": "2026-12-03T00:31:12.004+00:00",
        "latest": _LATEST,
        "reviews": {
            "date": "2026-12-03",
            "reviews_read": 10,
            "average_rating": "4.10",
            "histogram": [1, 0, 1, 3, 5],
            "verified_share": "0.9000",
            "latest_review_date": "2026-12-02",
            "negative": [
                {
                    "rating": 1,
                    "title": "Stopped working after two weeks",
                    "text": "It worked fine at first, then it stopped charging entirely.",
                    "date": "2026-11-28",
                    "verified": True,
                    "variant": "Color: Black",
                }
            ],
            "positive": [
                {
                    "rating": 5,
                    "title": "Works great",
                    "text": "Set up in minutes and it has worked perfectly every day since.",
                    "date": "2026-12-02",
                    "verified": True,
                    "variant": None,
                }
            ],
            "captured_at": "2026-12-03T00:31:12.004+00:00",
        },
        "recent_alerts": [],
    },
    ("GET", "/products/{asin}/metrics"): {
        "asin": A_ASIN,
        "range": "7d",
        "since": "2026-11-27",
        "points": [{**_POINT, "bsr": 3, "in_stock": True}],
    },
    ("GET", "/competitions/{asin}"): {
        "asin": A_ASIN,
        "competitors": [
            {
                "competitor_asin": A_RIVAL,
                "title": "Rival speaker",
                "own": {"price": "49.9900", "rating": "4.70", "bsr": 3},
                "competitor": {"price": "44.4300", "rating": "4.50", "bsr": 8},
                "price_diff": "5.5600",
                "price_gap_pct": "12.51",
                "rating_diff": "0.20",
                "bsr_diff": -5,
            }
        ],
    },
    ("GET", "/competitions/{asin}/report"): {
        "asin": A_ASIN,
        "version": 3,
        "generator": "rules",
        "generated_at": "2026-12-03T00:32:00+00:00",
        "report": {
            "asin": A_ASIN,
            "competitors": 1,
            "price_position": 2,
            "price_gap_pct": "12.50",
            "rows": [],
        },
    },
    ("GET", "/competitions/{asin}/report/export"): {
        "asin": A_ASIN,
        "version": 3,
        "format": "csv",
        "key": "reports/B0CX23V2ZK/v3.csv",
        "bytes": 214,
        "url": "https://exports.s3.amazonaws.com/reports/B0CX23V2ZK/v3.csv?X-Amz-Signature=0d1e",
        "expires_in_s": 300,
    },
    ("GET", "/recommendations/{asin}"): _REC,
    ("POST", "/recommendations/{asin}/refresh"): {**_REC, "report": {"asin": A_ASIN, "competitors": 1}},
    ("GET", "/tracked-asins"): {
        "items": [
            {
                "asin": A_ASIN,
                "title": "Echo Dot (5th Gen)",
                "tracked_at": "2026-12-01T10:00:00+00:00",
                "tracked_by": "ops-alice",
                "updated_at": "2026-12-03T00:31:12+00:00",
            }
        ],
        "next_cursor": None,
    },
    ("POST", "/tracked-asins"): {"added": [A_ASIN], "already_tracked": [A_RIVAL]},
    ("POST", "/competitor-links"): {"asin": A_ASIN, "competitor_asin": A_RIVAL, "created": True},
    ("POST", "/ingest-runs"): {
        "run_id": _RUN,
        "kind": "manual",
        "asins": 2,
        "jobs": [_JOB],
        "requeued": 0,
        "status": "running",
    },
    ("GET", "/jobs/{id}"): {
        "resource": "ingest_run",
        "id": _RUN,
        "kind": "daily",
        "status": "succeeded",
        "jobs_total": 1,
        "jobs_succeeded": 1,
        "items_ok": 99,
        "items_failed": 1,
        "cost_usd": "0.250000",
        "jobs": [],
        "errors": [{"item_index": 7, "asin": None, "reason": "missing or invalid asin", "job_id": _JOB}],
    },
    ("GET", "/health"): {
        "status": "ok",
        "checks": {
            "database": {"status": "up", "latency_ms": 0.8},
            "cache": {"status": "up", "latency_ms": 0.2},
        },
        "last_run_finished_at": "2026-12-03T00:41:09+00:00",
    },
}
PROMETHEUS_EXAMPLE = (
    "# TYPE pm_http_requests_total counter\n"
    'pm_http_requests_total{method="GET",route="/product-monitor/v1/products/{asin}",status="200"} 1520\n'
    'pm_cache_lookups_total{result="fresh"} 1498\n'
    "pm_upstream_cost_usd_total 12.5\n"
)


def _document_successes(api_router: APIRouter) -> None:
    """Every success body in the document with its example (read when the document is built)."""
    from fastapi.routing import APIRoute

    prefix = f"{BASE}/v1"
    for route in api_router.routes:
        if not isinstance(route, APIRoute):
            continue
        status = route.status_code or 200
        for method in route.methods:
            key = (method, route.path.removeprefix(prefix))
            if key == ("GET", "/metrics"):
                media, example = "text/plain", PROMETHEUS_EXAMPLE
            elif key in EXAMPLES:
                media, example = JSON, EXAMPLES[key]
            else:
                continue
            entry = route.responses.setdefault(status, {"description": "OK"})
            entry.setdefault("content", {})[media] = {"example": example}


_document_successes(router)
edge.document(router)


app = create_app(
    title="opsdeck product monitor",
    base_path=BASE,
    routers=[router],
    description="Amazon product monitoring fed by Apify (seed 002): cache-first reads, tracking, runs.",
)
# innermost (after the request-id middleware), so 413s and 304s carry x-request-id too
app.user_middleware.append(Middleware(Edge))
handler = lambda_handler(app, text_mime_types=["text/plain"])
