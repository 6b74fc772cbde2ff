"""``product-monitor-graphql``: read-only GraphQL (seed §3d) with persisted queries only.

Its own function so that REST cold starts never pay for ``graphql-core`` (measured in
docs/product_monitor.md). Endpoints::

    POST /product-monitor/graphql   {"op": "<sha256 of the query>", "variables": {...}, "query"?: "..."}
    GET  /product-monitor/graphql?op=<sha256>&vh=<sha256 of the variables JSON>&variables=<JSON>

Only the documents in ``PERSISTED`` run: ``op`` (required) is the SHA-256 (hex) of the query text;
a body may also send ``query``, which must hash to ``op`` (409 otherwise) — the text itself is
never run, only the registered document. Unknown hashes → 404 ``persisted-query-not-found``.
On GET, ``vh`` must
be the SHA-256 of the exact ``variables`` text (edge caches key on ``op`` + ``vh``). Every
document is checked before it runs: depth ≤ ``MAX_DEPTH`` (6) and cost ≤ ``MAX_COST`` (1,000;
one per field, lists multiply their selection by ``LIST_SIZE``). Resolvers read through the
same cache entries and generation counters as REST (``product:{asin}:summary``,
``product:{asin}:metrics:daily:{range}``, ``recommendation:{asin}:latest``). The playground
page (a list of the persisted operations with a form) exists only when ``STAGE=local``.
Requests are counted per ``op`` in the deployment-wide telemetry (route label
``graphql:<op prefix>``; hashes that are not persisted all count as ``graphql:unknown``). As in
REST (``edge.Edge``), request bodies are limited, every response carries an ``ETag`` and a
``GET`` with a matching ``If-None-Match`` answers 304 without a body. JWT roles as REST:
``viewer``, ``operator`` or ``admin``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from typing import Any

from fastapi import APIRouter, Body, Query, Request, Security
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware

from opsdeck import auth, cache
from opsdeck.api import create_app, lambda_handler
from opsdeck.errors import Conflict, Forbidden, InvalidInput, NotFound, OpsdeckError, Unauthorized
from opsdeck.jsonutil import dumps
from opsdeck.lazy import lazy_import
from opsdeck.openapi import problems

from . import cachekeys, edge
from .domain import valid_asin
from .edge import Edge
from .settings import READ_ROLES

graphql = lazy_import("graphql")
views = lazy_import("functions.product_monitor.views")
repository = lazy_import("functions.product_monitor.repository")
db = lazy_import("opsdeck.db")

BASE = "/product-monitor/graphql"
MAX_DEPTH = 6
MAX_COST = 1000
LIST_SIZE = 10
MAX_VARIABLES_BYTES = 4096

SDL = """
type Query {
  product(asin: String!): Product
  recommendation(asin: String!): Recommendation
}
type Product {
  asin: String!
  title: String
  brand: String
  category: String
  tracked: Boolean!
  latest: Latest
  metrics(range: String = "30d"): [MetricPoint!]!
  competitors: [Product!]!
  recommendation: Recommendation
  reviews: ReviewSummary
}
type ReviewSummary {
  date: String!, reviewsRead: Int!, averageRating: String, histogram: [Int!]!
  verifiedShare: String, latestReviewDate: String, capturedAt: String
  negative: [ReviewSnippet!]!, positive: [ReviewSnippet!]!
}
type ReviewSnippet {
  rating: Int!, title: String, text: String, date: String, verified: Boolean, variant: String
}
type Latest {
  date: String, price: String, currency: String, rating: Float, reviewsCount: Int, bsr: Int
  inStock: Boolean
}
type MetricPoint {
  date: String!, price: String, rating: Float, reviewsCount: Int, bsr: Int, inStock: Boolean
}
type Recommendation {
  asin: String!, version: Int!, generator: String!, generatedAt: String!
  items: [RecommendationItem!]!
}
type RecommendationItem { code: String!, priority: String!, text: String! }
"""

#: the persisted documents, by name; their SHA-256 is the ``op`` clients send
QUERIES = {
    "ProductSummary": (
        "query ProductSummary($asin: String!) { product(asin: $asin) { asin title brand tracked "
        "latest { date price currency rating reviewsCount bsr inStock } } }"
    ),
    "ProductWithCompetitors": (
        'query ProductWithCompetitors($asin: String!, $range: String = "30d") { product(asin: $asin) { '
        "asin title latest { price rating bsr inStock } metrics(range: $range) { date price rating bsr } "
        "competitors { asin title latest { price rating bsr inStock } } "
        "recommendation { version items { code priority text } } } }"
    ),
    "ProductReviews": (
        "query ProductReviews($asin: String!) { product(asin: $asin) { asin title "
        "latest { rating reviewsCount } "
        "reviews { date reviewsRead averageRating histogram verifiedShare latestReviewDate "
        "negative { rating title text date verified variant } "
        "positive { rating title text date verified variant } } } }"
    ),
    "Recommendation": (
        "query Recommendation($asin: String!) { recommendation(asin: $asin) { asin version generator "
        "generatedAt items { code priority text } } }"
    ),
}


def op_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


PERSISTED: dict[str, str] = {op_of(q): q for q in QUERIES.values()}
#: the document's examples (what ``demo.contract`` seeds)
EXAMPLE_OP = op_of(QUERIES["ProductSummary"])
EXAMPLE_VARIABLES = {"asin": "B0CX23V2ZK"}
EXAMPLE_VARIABLES_TEXT = json.dumps(EXAMPLE_VARIABLES, separators=(",", ":"))
EXAMPLE_VH = hashlib.sha256(EXAMPLE_VARIABLES_TEXT.encode()).hexdigest()


class PersistedQueryNotFound(OpsdeckError):
    status, slug, title = 404, "persisted-query-not-found", "Persisted query not found"


class QueryTooComplex(OpsdeckError):
    status, slug, title = 400, "query-too-complex", "Query too complex"


# -------------------------------------------------------------------- schema


_schema: Any = None
_documents: dict[str, Any] = {}


def schema() -> Any:
    global _schema
    if _schema is None:
        s = graphql.build_schema(SDL)
        q = s.query_type.fields
        q["product"].resolve = _resolve_product
        q["recommendation"].resolve = _resolve_recommendation
        p = s.type_map["Product"].fields
        p["metrics"].resolve = _resolve_metrics
        p["competitors"].resolve = _resolve_competitors
        p["recommendation"].resolve = lambda obj, info: _recommendation(obj["asin"])
        p["latest"].resolve = lambda obj, info: _latest(obj.get("latest"))
        v = s.type_map["ReviewSummary"].fields
        for field, key in (
            ("reviewsRead", "reviews_read"),
            ("averageRating", "average_rating"),
            ("verifiedShare", "verified_share"),
            ("latestReviewDate", "latest_review_date"),
            ("capturedAt", "captured_at"),
        ):
            v[field].resolve = lambda obj, info, key=key: _text(obj.get(key))
        v["reviewsRead"].resolve = lambda obj, info: obj.get("reviews_read")
        r = s.type_map["Recommendation"].fields
        r["generatedAt"].resolve = lambda obj, info: str(obj.get("generated_at"))
        for name in ("Latest", "MetricPoint"):
            s.type_map[name].fields["reviewsCount"].resolve = lambda obj, info: obj.get("reviews_count")
            s.type_map[name].fields["inStock"].resolve = lambda obj, info: obj.get("in_stock")
        _schema = s
    return _schema


def _text(value: Any) -> Any:
    """Dates, decimals and timestamps as the JSON text REST serves (cached values may be either)."""
    return None if value is None else value if isinstance(value, str) else str(value)


def _latest(latest: dict[str, Any] | None) -> dict[str, Any] | None:
    if latest is None:
        return None
    price = latest.get("price") or {}
    return {**latest, "price": price.get("amount"), "currency": price.get("currency")}


def _cached(key: str, loader, ttl: cachekeys.Ttl, gens: tuple[str, ...]) -> Any:
    try:
        return cache.get_or_load(
            key, loader, fresh_s=ttl.fresh_s, stale_s=ttl.stale_s, generations=gens
        ).value
    except NotFound:
        return None


def _product(asin: str) -> dict[str, Any] | None:
    if not valid_asin(asin):
        raise graphql.GraphQLError("asin must match ^[A-Z0-9]{10}$")
    return _cached(
        cachekeys.summary(asin), lambda: views.summary(asin), cachekeys.SUMMARY, (cachekeys.gen(asin),)
    )


def _resolve_product(_root: Any, _info: Any, asin: str) -> Any:
    return _product(asin)


def _recommendation(asin: str) -> dict[str, Any] | None:
    def load() -> dict[str, Any]:
        with db.transaction() as conn:
            row = repository.latest_recommendation(conn, asin)
        if row is None:
            raise NotFound(asin)
        return row

    return _cached(cachekeys.recommendation(asin), load, cachekeys.RECOMMENDATION, (cachekeys.gen(asin),))


def _resolve_recommendation(_root: Any, _info: Any, asin: str) -> Any:
    if not valid_asin(asin):
        raise graphql.GraphQLError("asin must match ^[A-Z0-9]{10}$")
    return _recommendation(asin)


def _resolve_metrics(obj: dict[str, Any], _info: Any, range: str = "30d") -> Any:
    if range not in cachekeys.RANGES:
        raise graphql.GraphQLError("range must be 7d, 30d or 90d")
    asin = obj["asin"]
    value = _cached(
        cachekeys.metrics(asin, range),
        lambda: views.metrics(asin, range),
        cachekeys.METRICS,
        (cachekeys.gen(asin),),
    )
    return (value or {}).get("points", [])


def _resolve_competitors(obj: dict[str, Any], _info: Any) -> Any:
    asin = obj["asin"]

    def load() -> dict[str, Any]:
        with db.transaction() as conn:
            return {"competitors": repository.competitors(conn, asin)}

    links = _cached(cachekeys.compare(asin, "_links"), load, cachekeys.COMPARE, (cachekeys.gen(asin),)) or {}
    return [p for c in links.get("competitors", []) if (p := _product(c)) is not None]


# --------------------------------------------------------------- governance


def depth_and_cost(document: Any) -> tuple[int, int]:
    """Depth of the deepest field and the cost (fields, lists x LIST_SIZE) of ``document``."""
    s = schema()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)
    }

    def walk(selection_set: Any, parent: Any, depth: int, seen: frozenset[str]) -> tuple[int, int]:
        deepest, cost = depth, 0
        for sel in selection_set.selections:
            if isinstance(sel, graphql.FragmentSpreadNode):
                name = sel.name.value
                if name in seen or name not in fragments:
                    continue
                d, c = walk(fragments[name].selection_set, parent, depth, seen | {name})
            elif isinstance(sel, graphql.InlineFragmentNode):
                d, c = walk(sel.selection_set, parent, depth, seen)
            else:
                name = sel.name.value
                field = getattr(parent, "fields", {}).get(name)
                if field is None:  # the meta fields every type has: counted like any other field
                    field = meta.get(name) if parent is s.query_type or name == "__typename" else None
                if field is None:  # not in the schema (validation refuses it): the deepest guess
                    d, c = (
                        walk(sel.selection_set, None, depth + 1, seen)
                        if sel.selection_set
                        else (depth + 1, 0)
                    )
                    c = 1 + LIST_SIZE * c
                else:
                    kind = field.type
                    multiplier = 1
                    while isinstance(kind, graphql.GraphQLNonNull | graphql.GraphQLList):
                        if isinstance(kind, graphql.GraphQLList):
                            multiplier *= LIST_SIZE
                        kind = kind.of_type
                    if sel.selection_set is not None:
                        d, c = walk(sel.selection_set, kind, depth + 1, seen)
                        c = 1 + multiplier * c
                    else:
                        d, c = depth + 1, 1
            deepest, cost = max(deepest, d), cost + c
        return deepest, cost

    meta = {
        "__schema": graphql.SchemaMetaFieldDef,
        "__type": graphql.TypeMetaFieldDef,
        "__typename": graphql.TypeNameMetaFieldDef,
    }
    deepest, total = 0, 0
    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            d, c = walk(definition.selection_set, s.query_type, 0, frozenset())
            deepest, total = max(deepest, d), total + c
    return deepest, total


def document_for(op: str) -> Any:
    """The parsed, validated, governed document of a persisted ``op`` (cached per container)."""
    found = _documents.get(op)
    if found is not None:
        return found
    query = PERSISTED.get(op)
    if query is None:
        raise PersistedQueryNotFound(f"op {op[:16]}… is not a persisted query")
    document = graphql.parse(query)
    errors = graphql.validate(schema(), document)
    if errors:
        raise InvalidInput(f"persisted query {op[:16]}… is invalid: {errors[0].message}")
    depth, cost = depth_and_cost(document)
    if depth > MAX_DEPTH:
        raise QueryTooComplex(f"depth {depth} exceeds {MAX_DEPTH}", depth=depth)
    if cost > MAX_COST:
        raise QueryTooComplex(f"cost {cost} exceeds {MAX_COST}", cost=cost)
    if any(
        isinstance(d, graphql.OperationDefinitionNode) and d.operation.value != "query"
        for d in document.definitions
    ):
        raise InvalidInput("only queries are served here (mutations go through REST)")
    _documents[op] = document
    return document


# ------------------------------------------------------------------- routes

_bearer = auth.bearer_scheme  # the layer's one `bearer` scheme in every document
router = APIRouter(
    tags=["product monitor graphql"],
    responses=problems(
        PersistedQueryNotFound, QueryTooComplex, InvalidInput, Conflict, Unauthorized, Forbidden
    ),
)


class GraphQLIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"op": EXAMPLE_OP, "variables": EXAMPLE_VARIABLES}]}
    )
    op: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of a persisted query")
    query: str | None = Field(
        None, min_length=1, max_length=10_000, description="optional: must hash to a persisted op"
    )
    variables: dict[str, Any] | None = None
    operationName: str | None = Field(None, max_length=100)


def _principal(request: Request) -> None:
    auth.authorize(auth.authenticate(request), *READ_ROLES, any_of=True)


_PRIVATE = "private, no-cache"  # answers depend on the caller's token: revalidate (ETag), never share


def _run(request: Request, op: str, variables: dict[str, Any]) -> Response:
    # counted per persisted op by the edge; every other hash under one label, so that callers
    # sending made-up hashes cannot grow the deployment's counters without bound
    request.state.telemetry_route = f"graphql:{op[:12]}" if op in PERSISTED else "graphql:unknown"
    document = document_for(op)
    result = graphql.execute(schema(), document, variable_values=variables)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
    return Response(
        dumps(body), media_type="application/json", headers={"cache-control": "private, no-cache"}
    )


@router.post(BASE, summary="Run a persisted query")
async def post_graphql(
    request: Request,
    body: GraphQLIn = Body(...),
    _credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> Response:
    _principal(request)
    op = body.op
    if body.query is not None and op_of(body.query) != op:
        raise Conflict("op is not the SHA-256 of query")
    return _run(request, op, body.variables or {})


@router.get(BASE, summary="Run a persisted query (cacheable at the edge by op + vh)")
async def get_graphql(
    request: Request,
    op: str = Query(..., pattern=r"^[0-9a-f]{64}$", examples=[EXAMPLE_OP]),
    vh: str | None = Query(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the variables text", examples=[EXAMPLE_VH]
    ),
    variables: str | None = Query(
        None, max_length=MAX_VARIABLES_BYTES, description="JSON object", examples=[EXAMPLE_VARIABLES_TEXT]
    ),
    _credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> Response:
    _principal(request)
    text = variables or ""
    if (text or vh is not None) and (vh is None or hashlib.sha256(text.encode()).hexdigest() != vh):
        # an edge cache keys on op + vh: a vh that does not hash what was sent would file one
        # answer under another's key
        raise Conflict("vh must be the SHA-256 of the variables parameter (of the empty text without one)")
    if text:
        try:
            parsed = json.loads(text)
        except ValueError:
            raise InvalidInput("variables is not JSON") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("variables must be a JSON object")
    else:
        parsed = {}
    return _run(request, op, parsed)


#: pages without a token (the playground checks none: it lists what is public in the code anyway)
pages = APIRouter(tags=["product monitor graphql"], responses=problems(NotFound))


@pages.get(
    f"{BASE}/playground", summary="The persisted operations (local mode only)", response_class=HTMLResponse
)
async def playground() -> Response:
    if os.environ.get("STAGE", "local") != "local":
        raise NotFound("the playground exists only in local mode")
    rows = "".join(
        f"<li><b>{html.escape(name)}</b> <code>{op_of(q)}</code><pre>{html.escape(q)}</pre></li>"
        for name, q in QUERIES.items()
    )
    return HTMLResponse(
        f"<!doctype html><title>persisted queries</title><h1>Persisted queries</h1><ul>{rows}</ul>"
    )


def _document_successes() -> None:
    from fastapi.routing import APIRoute

    data = {"data": {"product": {"asin": "B0CX23V2ZK", "title": "Echo Dot (5th Gen)", "tracked": True}}}
    for route in (*router.routes, *pages.routes):
        if isinstance(route, APIRoute):
            if route.path.endswith("/playground"):
                media, example = "text/html", "<!doctype html><title>persisted queries</title>…"
            else:
                media, example = "application/json", data
            route.responses.setdefault(200, {"description": "OK"}).setdefault("content", {})[media] = {
                "example": example
            }


_document_successes()
edge.document(router)
edge.document(pages)

app = create_app(
    title="opsdeck product monitor GraphQL",
    base_path=BASE,
    routers=[router, pages],
    description="Read-only GraphQL over the product monitor (seed 002 §3d): persisted queries only.",
)
# as REST: body limit (413), ETag on every response and 304 on a matching GET, telemetry
app.user_middleware.append(Middleware(Edge))
handler = lambda_handler(app, text_mime_types=["text/html"])
