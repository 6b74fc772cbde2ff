"""``backoffice-api``: the admin lookup API over the read store, with RBAC and an audit log.

GET /backoffice/admin/tx/{tx_id}                 entry + paired entry + payment order (ADMIN_READ)
GET /backoffice/admin/payment-orders/{order_id}  order + its entries + pairing        (ADMIN_READ)
GET /backoffice/admin/wallets/{wallet_id}/tx     newest first, cursor pages, limit<=100 (ADMIN_READ)
GET /backoffice/admin/audit                      the audit log, by actor/time/target   (ADMIN_AUDIT)

Authentication happens here, not in API Gateway (the catalog routes have ``authorizer=None``):
a gateway authorizer would answer 401 before the function runs, and the seed wants *every*
admin request audited. Each request therefore goes: authenticate (401) → authorize (403) →
validate input (422) → look up (404) → one audit row (who, when, action, target, result count,
outcome, status, ip from API Gateway's ``sourceIp``, user agent; never the token). A lookup and
its audit row share one transaction; a denied request writes its row alone. If the audit row
cannot be written the request fails rather than answer unaudited.

Inputs are taken as raw strings and parsed in ``domain`` (not by FastAPI) so that malformed
ones are audited too and come out as problem+json 422 after the auth checks; the OpenAPI
document still states each rule (``opsdeck.params.documented``: id pattern, limit range,
RFC 3339 times, enums, opaque cursors), and ``domain`` enforces exactly that rule. The response
models (``schemas``) only document the bodies; they are loaded when the document is built.
The repository (SQLAlchemy) is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.responses import JSONResponse

from opsdeck import auth, db
from opsdeck import cursor as cursor_codec
from opsdeck.api import create_app, lambda_handler, problems, raises, request_id
from opsdeck.errors import Forbidden, InvalidInput, NotFound, OpsdeckError, Unauthorized, Unavailable
from opsdeck.lazy import lazy_import
from opsdeck.observability import logger
from opsdeck.openapi import body
from opsdeck.params import CURSOR, TIMESTAMP_SCHEMA, documented, or_empty

from . import domain
from .changes import ID_PATTERN

repository = lazy_import("functions.backoffice.repository")

BASE = "/backoffice/admin"
OUTCOMES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
NO_STORE = {"cache-control": "no-store"}


# ---------------------------------------------------------------- the document
# What ``domain`` enforces on the raw strings, stated for the document.

#: the response models: imported when the document is built, not at cold start
SCHEMAS = "functions.backoffice.schemas"
#: the tx / payment order / wallet the contract data (``demo.contract``) holds
EXAMPLE_TX, EXAMPLE_ORDER, EXAMPLE_WALLET = "tx-0000000001", "po-00000001", "w-00011"


def _id(example: str) -> Any:
    """A path id: the rule in the document, the raw text to the handler (``domain.parse_id``)."""
    return Path(
        description="1-64 characters `[A-Za-z0-9._:-]`, starting with a letter or digit",
        json_schema_extra={"pattern": ID_PATTERN.pattern, "examples": [example]},
    )


LIMIT = documented(
    or_empty(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": domain.MAX_LIMIT,
            "description": f"page size, 1..{domain.MAX_LIMIT} (default {domain.DEFAULT_LIMIT})",
        }
    )
)
SINCE_UNTIL = documented(or_empty(TIMESTAMP_SCHEMA))
TEXT = {"type": "string", "pattern": "^[^\\x00-\\x1f]*$", "description": "no control characters"}


def _choice(choices: tuple[str, ...]) -> Any:
    return documented(or_empty({"type": "string", "enum": list(choices)}))


@raises(Unauthorized, Forbidden, InvalidInput, Unavailable)
def _documents_the_admin_flow() -> None:
    """Documents the bearer scheme and what ``_admin`` answers; authentication happens in ``_admin``
    (after the request is recorded), not here."""


_document_flow = Security(auth.bearer_scheme)

router = APIRouter(
    prefix=BASE,
    tags=["backoffice admin"],
    dependencies=[_document_flow, Security(_documents_the_admin_flow)],
)

Work = Callable[[Any], tuple[dict[str, Any], int]]


# ------------------------------------------------------------------- audit core


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def _source_ip(request: Request) -> str | None:
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        ip = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
        if ip:
            return str(ip)[:64]
    return request.client.host if request.client else None


def _write_alone(record: dict[str, Any]) -> None:
    try:
        repository.write_audit(record)
    except Exception as exc:  # the response is an error already; keep the record in the logs
        logger.error("audit record not stored", extra={"audit": record, "error": type(exc).__name__})


def _admin(request: Request, action: str, role: str, target_type: str, target_id: str | None, work: Work):
    record: dict[str, Any] = {
        "request_id": request_id(request),
        "actor": None,
        "actor_roles": None,
        "action": action,
        "target_type": target_type,
        "target_id": _clip(target_id, 128),
        "outcome": None,
        "status": None,
        "result_count": 0,
        "reason": None,
        "ip": _source_ip(request),
        "user_agent": _clip(request.headers.get("user-agent"), 256),
    }
    principal = None
    try:
        principal = auth.authenticate(request)
        auth.authorize(principal, role)
    except OpsdeckError as exc:
        if principal is not None:
            record.update(actor=principal.subject, actor_roles=" ".join(sorted(principal.roles)))
        record.update(
            outcome=OUTCOMES.get(exc.status, "error"), status=exc.status, reason=_clip(exc.detail, 200)
        )
        _write_alone(record)
        raise
    record.update(actor=principal.subject, actor_roles=" ".join(sorted(principal.roles)))

    answered: OpsdeckError | None = None
    try:
        with db.transaction() as conn:
            try:
                body, count = work(conn)
                record.update(outcome="ok", status=200, result_count=count)
            except OpsdeckError as exc:
                if not 400 <= exc.status < 500:
                    raise
                answered = exc  # 404/422: the transaction is intact, the audit row goes in it
                record.update(
                    outcome=OUTCOMES.get(exc.status, "invalid"),
                    status=exc.status,
                    reason=_clip(exc.detail, 200),
                )
            repository.insert_audit(conn, record)
    except Exception as exc:
        record.update(
            outcome="error",
            status=exc.status if isinstance(exc, OpsdeckError) else 500,
            result_count=0,
            reason=_clip(exc.detail if isinstance(exc, OpsdeckError) else type(exc).__name__, 200),
        )
        _write_alone(record)
        raise
    if answered is not None:
        raise answered
    return JSONResponse(body, headers=NO_STORE)


# ----------------------------------------------------------------------- routes


@router.get(
    "/tx/{tx_id}",
    summary="A ledger entry, its paired entry and payment order",
    responses={**body(f"{SCHEMAS}:TxOut"), **problems(NotFound)},
)
async def get_tx(request: Request, tx_id: str = _id(EXAMPLE_TX)) -> JSONResponse:
    def work(conn) -> tuple[dict[str, Any], int]:
        key = domain.parse_id(tx_id, "tx_id")
        row = repository.tx(conn, key)
        if row is None:
            raise NotFound(f"no ledger entry {key}")
        if row["deleted_at"] is not None:
            raise NotFound(f"ledger entry {key} was deleted at the source", deleted_at=row["deleted_at"])
        return domain.tx_view(row, domain.status_groups()), 1

    return _admin(request, f"GET {BASE}/tx/{{tx_id}}", domain.READ_ROLE, "tx", tx_id, work)


@router.get(
    "/payment-orders/{order_id}",
    summary="A payment order with its ledger entries and pairing",
    responses={**body(f"{SCHEMAS}:PaymentOrderOut"), **problems(NotFound)},
)
async def get_payment_order(request: Request, order_id: str = _id(EXAMPLE_ORDER)) -> JSONResponse:
    def work(conn) -> tuple[dict[str, Any], int]:
        key = domain.parse_id(order_id, "order_id")
        order, entries, pair, fresh = repository.payment_order(conn, key)
        if order is None and not entries:
            raise NotFound(f"no payment order {key}")
        view = domain.payment_order_view(key, order, entries, pair, fresh, domain.status_groups())
        return view, len(entries) + (order is not None)

    return _admin(
        request, f"GET {BASE}/payment-orders/{{order_id}}", domain.READ_ROLE, "payment_order", order_id, work
    )


@router.get(
    "/wallets/{wallet_id}/tx",
    summary="A wallet's ledger entries, newest first",
    responses={**body(f"{SCHEMAS}:WalletPage"), **problems(NotFound)},
)
async def get_wallet_tx(
    request: Request,
    wallet_id: str = _id(EXAMPLE_WALLET),
    limit: Annotated[str, LIMIT] | None = Query(None),
    cursor: Annotated[str, documented(CURSOR)] | None = Query(None),
) -> JSONResponse:
    def work(conn) -> tuple[dict[str, Any], int]:
        key = domain.parse_id(wallet_id, "wallet_id")
        size = domain.parse_limit(limit)
        after = domain.wallet_cursor(cursor)
        rows = repository.wallet_page(conn, key, size + 1, after)
        if not rows and after is None:
            raise NotFound(f"no ledger entries for wallet {key}")
        page = rows[:size]
        groups = domain.status_groups()
        items = [domain.entry_view(r, groups, order_known=r["order_known"]) for r in page]
        last = page[-1] if page else None
        next_cursor = (
            cursor_codec.encode("w", last["created_us"], last["tx_id"])
            if last is not None and len(rows) > size
            else None
        )
        fresh = repository.freshness(conn)
        body = {
            "wallet_id": key,
            "items": items,
            "next_cursor": next_cursor,
            "limit": size,
            "data_lag_sec": fresh["data_lag_sec"],
            "as_of": fresh["as_of"],
        }
        return body, len(items)

    return _admin(
        request, f"GET {BASE}/wallets/{{wallet_id}}/tx", domain.READ_ROLE, "wallet", wallet_id, work
    )


@router.get("/audit", summary="The admin audit log, newest first", responses=body(f"{SCHEMAS}:AuditPage"))
async def get_audit(
    request: Request,
    actor: Annotated[str, documented({**TEXT, "maxLength": 200})] | None = Query(
        None, description="subject of the caller"
    ),
    since: Annotated[str, SINCE_UNTIL] | None = Query(None, description="inclusive"),
    until: Annotated[str, SINCE_UNTIL] | None = Query(None, description="exclusive"),
    target_type: Annotated[str, _choice(domain.TARGET_TYPES)] | None = Query(None),
    target_id: Annotated[str, documented({**TEXT, "maxLength": 128})] | None = Query(None),
    outcome: Annotated[str, _choice(domain.AUDIT_OUTCOMES)] | None = Query(None),
    limit: Annotated[str, LIMIT] | None = Query(None),
    cursor: Annotated[str, documented(CURSOR)] | None = Query(None),
) -> JSONResponse:
    def work(conn) -> tuple[dict[str, Any], int]:
        f = repository.AuditFilter(
            actor=domain.parse_text(actor, "actor"),
            since=domain.parse_time(since, "since"),
            until=domain.parse_time(until, "until"),
            target_type=domain.parse_choice(target_type, "target_type", domain.TARGET_TYPES),
            target_id=domain.parse_text(target_id, "target_id", 128),
            outcome=domain.parse_choice(outcome, "outcome", domain.AUDIT_OUTCOMES),
        )
        size = domain.parse_limit(limit)
        before = domain.audit_cursor(cursor)
        rows = repository.audit_page(conn, f, size + 1, before)
        page = rows[:size]
        next_cursor = cursor_codec.encode("a", page[-1]["id"]) if len(rows) > size else None
        return {
            "items": [domain.audit_view(r) for r in page],
            "next_cursor": next_cursor,
            "limit": size,
        }, len(page)

    query = request.url.query or None
    return _admin(request, f"GET {BASE}/audit", domain.AUDIT_ROLE, "audit", query, work)


app = create_app(
    title="opsdeck backoffice",
    base_path="/backoffice",
    routers=[router],
    description="Admin lookups over the backoffice read store (seed 004). Every request is audited.",
)
handler = lambda_handler(app)
