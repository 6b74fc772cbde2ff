"""``marketplace-api``: the seed's dashboard API under ``/marketplace``.

GET  /marketplace/dashboard/health            database, cache, age of the last successful syncs
GET  /marketplace/orders                      filters: status, purchase date range; keyset pages
GET  /marketplace/orders/{amazon_order_id}    one order with its items
POST /marketplace/orders/sync                 a run now (JWT with the operator role):
                                              200 {run_id, fetched, upserted, new, …} when done within
                                              SYNC_API_DEADLINE_S, else 202 {run_id, status} + Location
GET  /marketplace/inventory                   FBA inventory summaries
GET  /marketplace/logs                        sync runs, newest first

Missing SP-API credentials → 503 problem+json naming them; SP-API/LWA failure or bad
upstream JSON → 502 (the run is recorded as failed either way). ``POST /orders/sync`` runs
the same code as the schedule, inline; when the deadline stops it, what was complete is
committed (``partial``) or nothing is (``deferred``), the answer is 202, and the scheduled
function is asked to continue at once (asynchronous invoke) — else its next tick does.

The repository and the sync (SQLAlchemy) are imported on first use, not at cold start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from opsdeck import cache, db
from opsdeck import cursor as cursor_codec
from opsdeck.api import create_app, lambda_handler, problem_response, problems
from opsdeck.auth import Principal, require_roles
from opsdeck.errors import (
    InvalidInput,
    NotConfigured,
    NotFound,
    OpsdeckError,
    Unavailable,
    UpstreamError,
    status_problem,
)
from opsdeck.lazy import lazy_import
from opsdeck.params import Cursor, Timestamp, documented

from .domain import ORDER_STATUSES, canonical_status
from .pacing import Deadline
from .settings import OPERATOR_ROLE, load

repository = lazy_import("functions.marketplace.repository")
sync = lazy_import("functions.marketplace.sync")

router = APIRouter(prefix="/marketplace", tags=["marketplace"])
ORDER_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
#: the order ``functions.marketplace.demo.contract`` seeds: the document's example finds it
EXAMPLE_ORDER_ID = "113-5550100-0000001"
_NOW = "2026-01-05T09:30:00Z"
_MONEY = {"amount": "42.50", "currency_code": "USD"}
_ORDER = {
    "id": 1,
    "amazon_order_id": EXAMPLE_ORDER_ID,
    "marketplace_id": "ATVPDKIKX0DER",
    "order_status": "Unshipped",
    "purchase_date": "2026-01-05T09:12:04Z",
    "last_update_date": "2026-01-05T09:20:11Z",
    "fulfillment_channel": "MFN",
    "sales_channel": "Amazon.com",
    "order_total": _MONEY,
    "items_shipped": 0,
    "items_unshipped": 1,
    "first_seen_at": _NOW,
    "synced_at": _NOW,
}
_ITEM = {
    "order_item_id": "10000000000001",
    "asin": "B000000001",
    "seller_sku": "SKU-0001",
    "title": "Demo item",
    "quantity_ordered": 1,
    "quantity_shipped": 0,
    "item_price": _MONEY,
    "item_tax": {"amount": "3.40", "currency_code": "USD"},
}
_RUN = {
    "id": 12,
    "kind": "orders",
    "trigger": "schedule",
    "status": "succeeded",
    "api_version": "v0",
    "started_at": "2026-01-05T09:15:00Z",
    "finished_at": "2026-01-05T09:15:02Z",
    "window_start": "2026-01-05T08:58:00Z",
    "window_end": "2026-01-05T09:13:00Z",
    "pages": 1,
    "fetched": 3,
    "upserted": 3,
    "new": 1,
    "items_fetched": 3,
    "notified": 1,
    "errors": 0,
    "error": None,
    "notify_error": None,
    "watermark": "2026-01-05T09:13:00Z",
}
_INVENTORY = {
    "marketplace_id": "ATVPDKIKX0DER",
    "seller_sku": "SKU-0001",
    "asin": "B000000001",
    "fn_sku": "X000000001",
    "product_name": "Demo item",
    "condition": "NewItem",
    "total_quantity": 40,
    "fulfillable_quantity": 35,
    "inbound_working_quantity": 0,
    "inbound_shipped_quantity": 5,
    "inbound_receiving_quantity": 0,
    "reserved_quantity": 0,
    "unfulfillable_quantity": 0,
    "researching_quantity": 0,
    "last_updated_time": "2026-01-05T09:00:00Z",
    "synced_at": _NOW,
}


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


# ---------------------------------------------------------------------- schemas


class Money(BaseModel):
    amount: str = Field(description="decimal string, as Amazon sends it")
    currency_code: str | None


class OrderOut(BaseModel):
    id: int
    amazon_order_id: str
    marketplace_id: str | None
    order_status: str
    purchase_date: datetime | None
    last_update_date: datetime
    fulfillment_channel: str | None
    sales_channel: str | None
    order_total: Money | None = Field(description="null while the order is Pending (no prices yet)")
    items_shipped: int | None
    items_unshipped: int | None
    first_seen_at: datetime | None
    synced_at: datetime


class OrdersPage(BaseModel):
    model_config = _example({"orders": [_ORDER], "next_cursor": None})

    orders: list[OrderOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class ItemOut(BaseModel):
    order_item_id: str
    asin: str | None
    seller_sku: str | None
    title: str | None
    quantity_ordered: int
    quantity_shipped: int | None
    item_price: Money | None
    item_tax: Money | None


class OrderDetail(OrderOut):
    api_version: str
    items: list[ItemOut]
    items_synced_at: datetime | None
    amazon_payload: dict[str, Any] = Field(description="the order exactly as SP-API returned it")


class OrderEnvelope(BaseModel):
    model_config = _example(
        {
            "order": {
                **_ORDER,
                "api_version": "v0",
                "items": [_ITEM],
                "items_synced_at": _NOW,
                "amazon_payload": {"AmazonOrderId": EXAMPLE_ORDER_ID, "OrderStatus": "Unshipped"},
            }
        }
    )

    order: OrderDetail


class SyncOut(BaseModel):
    model_config = _example(
        {
            "run_id": 13,
            "status": "succeeded",
            "fetched": 3,
            "upserted": 3,
            "new": 1,
            "items_fetched": 3,
            "notified": 1,
            "pending_notifications": 0,
            "errors": 0,
            "error": None,
            "notify_error": None,
            "watermark": "2026-01-05T09:28:00Z",
            "continues": None,
        }
    )

    run_id: int | None
    status: Literal["succeeded", "partial", "deferred", "running"]
    fetched: int = 0
    upserted: int = 0
    new: int = 0
    items_fetched: int = 0
    notified: int = 0
    pending_notifications: int = 0
    errors: int = 0
    error: str | None = None
    notify_error: str | None = None
    watermark: str | None = None
    continues: str | None = Field(None, description="who finishes a partial/deferred run")


class InventoryOut(BaseModel):
    marketplace_id: str
    seller_sku: str
    asin: str | None
    fn_sku: str | None
    product_name: str | None
    condition: str | None
    total_quantity: int | None
    fulfillable_quantity: int | None
    inbound_working_quantity: int | None
    inbound_shipped_quantity: int | None
    inbound_receiving_quantity: int | None
    reserved_quantity: int | None
    unfulfillable_quantity: int | None
    researching_quantity: int | None
    last_updated_time: datetime
    synced_at: datetime


class InventoryPage(BaseModel):
    model_config = _example({"inventory": [_INVENTORY], "next_cursor": None})

    inventory: list[InventoryOut]
    next_cursor: str | None


class RunOut(BaseModel):
    id: int
    kind: Literal["orders", "inventory"]
    trigger: str
    status: str
    api_version: str | None
    started_at: datetime
    finished_at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    pages: int
    fetched: int
    upserted: int
    new: int
    items_fetched: int
    notified: int
    errors: int
    error: str | None
    notify_error: str | None
    watermark: datetime | None


class LogsPage(BaseModel):
    model_config = _example({"logs": [_RUN], "next_cursor": None})

    logs: list[RunOut]
    next_cursor: str | None


class SyncAge(BaseModel):
    finished_at: datetime | None
    age_s: int | None


class HealthOut(BaseModel):
    model_config = _example(
        {
            "status": "ok",
            "db": "connected",
            "cache": "connected",
            "last_successful_sync": {
                "orders": {"finished_at": "2026-01-05T09:15:02Z", "age_s": 898},
                "inventory": {"finished_at": "2026-01-05T09:00:03Z", "age_s": 1797},
            },
            "checks": {
                "database": {"status": "ok", "latency_ms": 0.6},
                "cache": {"status": "ok", "latency_ms": 0.1},
            },
        }
    )

    status: Literal["ok", "degraded"]
    db: Literal["connected", "disconnected"]
    cache: Literal["connected", "disconnected"]
    last_successful_sync: dict[str, SyncAge]
    checks: dict[str, dict[str, Any]]


# ---------------------------------------------------------------------- helpers


def _money(amount: Decimal | None, currency: str | None) -> dict[str, Any] | None:
    if amount is None:
        return None
    normal = amount.normalize()
    if normal.as_tuple().exponent > -2:  # type: ignore[operator]
        normal = normal.quantize(Decimal("0.01"))
    return {"amount": format(normal, "f"), "currency_code": currency}


def _order(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "amazon_order_id": row.amazon_order_id,
        "marketplace_id": row.marketplace_id,
        "order_status": row.order_status,
        "purchase_date": row.purchase_date,
        "last_update_date": row.last_update_date,
        "fulfillment_channel": row.fulfillment_channel,
        "sales_channel": row.sales_channel,
        "order_total": _money(row.order_total_amount, row.order_total_currency),
        "items_shipped": row.items_shipped,
        "items_unshipped": row.items_unshipped,
        "first_seen_at": row.first_seen_at,
        "synced_at": row.synced_at,
    }


def _item(row: Any) -> dict[str, Any]:
    return {
        "order_item_id": row.order_item_id,
        "asin": row.asin,
        "seller_sku": row.seller_sku,
        "title": row.title,
        "quantity_ordered": row.quantity_ordered,
        "quantity_shipped": row.quantity_shipped,
        "item_price": _money(row.item_price_amount, row.item_price_currency),
        "item_tax": _money(row.item_tax_amount, row.item_price_currency),
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _statuses(values: list[str] | None) -> list[str]:
    wanted = [v.strip() for raw in values or () for v in raw.split(",") if v.strip()]
    canonical = [canonical_status(v) for v in wanted]
    unknown = [w for w, c in zip(wanted, canonical, strict=True) if c not in ORDER_STATUSES]
    if unknown:
        raise InvalidInput(
            f"unknown order status {', '.join(unknown)}; one of {', '.join(ORDER_STATUSES)}",
            allowed=list(ORDER_STATUSES),
        )
    return canonical


def _probe(probe) -> dict[str, Any]:
    try:
        return {"status": "ok", "latency_ms": round(probe(), 2)}
    except OpsdeckError as exc:
        return {"status": "down", "error": exc.detail}


# ------------------------------------------------------------------------ routes


@router.get(
    "/dashboard/health",
    summary="Database, cache and sync freshness",
    response_model=HealthOut,
    responses=problems(
        503, description="The database is down (`checks` says why); the cache alone is `degraded`"
    ),
)
async def health() -> Any:
    checks = {"database": _probe(db.ping), "cache": _probe(cache.ping)}
    db_ok = checks["database"]["status"] == "ok"
    cache_ok = checks["cache"]["status"] == "ok"
    body: dict[str, Any] = {
        "db": "connected" if db_ok else "disconnected",
        "cache": "connected" if cache_ok else "disconnected",
        "last_successful_sync": {},
        "checks": checks,
    }
    if not db_ok:
        detail = f"database unavailable: {checks['database'].get('error', '')}".strip()
        return problem_response(status_problem(503, detail, instance="/marketplace/dashboard/health", **body))
    now = datetime.now(UTC)
    finished = repository.last_successes()
    for kind in ("orders", "inventory"):
        at = finished.get(kind)
        body["last_successful_sync"][kind] = {
            "finished_at": at,
            "age_s": None if at is None else int((now - at).total_seconds()),
        }
    orders_age = body["last_successful_sync"]["orders"]["age_s"]
    fresh = orders_age is not None and orders_age <= load().sync_stale_after_s
    body["status"] = "ok" if fresh and cache_ok else "degraded"
    return body


STATUS_FILTER: dict[str, Any] = {
    "type": "string",
    "enum": [*ORDER_STATUSES, ""],
    "description": (
        "order status(es), repeated (`?status=Pending&status=Shipped`); matched case-insensitively, "
        "comma-separated lists and the Orders 2026-01-01 spellings (`PENDING_AVAILABILITY`) are "
        "accepted too; an empty value filters nothing; anything else is 422"
    ),
}


@router.get("/orders", summary="Stored orders, newest purchase first", response_model=OrdersPage)
async def list_orders(
    status: list[Annotated[str, documented(STATUS_FILTER)]] | None = Query(None),
    purchased_after: Timestamp | None = Query(
        None, description="purchase_date >= this (RFC 3339; UTC if naive)"
    ),
    purchased_before: Timestamp | None = Query(
        None, description="purchase_date < this (RFC 3339; UTC if naive)"
    ),
    limit: int = Query(50, ge=1, le=200),
    cursor: Cursor | None = Query(None, max_length=cursor_codec.MAX_LENGTH),
) -> Any:
    after = None
    position = cursor_codec.decode(cursor, "orders")
    if position is not None:
        try:
            date, last_id = position
            after = (datetime.fromisoformat(date) if date is not None else None, int(last_id))
        except (TypeError, ValueError):
            raise InvalidInput("cursor is malformed") from None
    rows = repository.list_orders(
        statuses=_statuses(status),
        purchased_after=_utc(purchased_after),
        purchased_before=_utc(purchased_before),
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursor_codec.encode(
            "orders", last.purchase_date.isoformat() if last.purchase_date else None, last.id
        )
    return {"orders": [_order(r) for r in page], "next_cursor": next_cursor}


@router.get(
    "/orders/{amazon_order_id}",
    summary="One order with its items",
    response_model=OrderEnvelope,
    responses=problems(NotFound),
)
async def get_order(
    amazon_order_id: str = Path(
        pattern=ORDER_ID, examples=[EXAMPLE_ORDER_ID], description="Amazon's order id"
    ),
) -> Any:
    found = repository.get_order(amazon_order_id)
    if found is None:
        raise NotFound(f"order {amazon_order_id} is not stored")
    row, items = found
    order = _order(row)
    order.update(
        api_version=row.api_version,
        items=[_item(i) for i in items],
        items_synced_at=row.items_synced_at,
        amazon_payload=row.raw_payload,
    )
    return {"order": order}


@router.post(
    "/orders/sync",
    summary="Run the orders sync now (operator role)",
    response_model=SyncOut,
    responses={
        202: {"model": SyncOut, "description": "still running in the background, or another run is"},
        **problems(
            UpstreamError, description="SP-API/LWA failed or answered garbage; the run is recorded as failed"
        ),
        **problems(
            NotConfigured, Unavailable, description="SP-API credentials (or the database/cache) are missing"
        ),
    },
)
async def sync_orders(_: Principal = Depends(require_roles(OPERATOR_ROLE))) -> Any:
    settings = load()
    deadline = Deadline.after(settings.sync_api_deadline_s)
    result = sync.run_orders_sync(trigger="api", deadline=deadline, settings=settings)
    body = result.as_dict()
    if result.status == "succeeded":
        return JSONResponse(SyncOut(**body).model_dump(mode="json"), status_code=200)
    if result.status in ("partial", "deferred"):
        handed = sync.request_background_run("api-continuation")
        body["continues"] = "background run" if handed else "next scheduled run"
    headers = {"location": f"/marketplace/logs?run_id={result.run_id}"} if result.run_id else {}
    return JSONResponse(SyncOut(**body).model_dump(mode="json"), status_code=202, headers=headers)


@router.get("/inventory", summary="FBA inventory summaries", response_model=InventoryPage)
async def list_inventory(
    seller_sku: str | None = Query(None, max_length=200),
    asin: str | None = Query(None, max_length=20),
    limit: int = Query(100, ge=1, le=500),
    cursor: Cursor | None = Query(None, max_length=cursor_codec.MAX_LENGTH),
) -> Any:
    position = cursor_codec.decode(cursor, "inventory")
    after = position[0] if position else None
    if position is not None and (len(position) != 1 or not isinstance(after, str)):
        raise InvalidInput("cursor is malformed")
    rows = repository.list_inventory(seller_sku=seller_sku, asin=asin, after_sku=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = cursor_codec.encode("inventory", page[-1].seller_sku) if len(rows) > limit else None
    fields = InventoryOut.model_fields
    return {"inventory": [{k: getattr(r, k) for k in fields} for r in page], "next_cursor": next_cursor}


@router.get("/logs", summary="Sync runs, newest first", response_model=LogsPage, responses=problems(NotFound))
async def list_logs(
    kind: Literal["orders", "inventory"] | None = None,
    status: Literal["running", "succeeded", "partial", "deferred", "failed"] | None = None,
    run_id: int | None = Query(None, ge=1, le=2**63 - 1, description="one run (404 if unknown)"),
    limit: int = Query(50, ge=1, le=200),
    cursor: Cursor | None = Query(None, max_length=cursor_codec.MAX_LENGTH),
) -> Any:
    if run_id is not None:
        row = repository.get_run(run_id)
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        rows = [row]
    else:
        position = cursor_codec.decode(cursor, "logs")
        before = position[0] if position else None
        if position is not None and (len(position) != 1 or type(before) is not int):
            raise InvalidInput("cursor is malformed")
        rows = repository.list_runs(kind=kind, status=status, before_id=before, limit=limit + 1)
    page = rows[:limit]
    next_cursor = cursor_codec.encode("logs", page[-1].id) if len(rows) > limit else None
    fields = RunOut.model_fields
    return {"logs": [{k: getattr(r, k) for k in fields} for r in page], "next_cursor": next_cursor}


app = create_app(
    title="opsdeck marketplace",
    base_path="/marketplace",
    routers=[router],
    description="Amazon SP-API orders and FBA inventory, synced on a schedule; Slack alerts of new orders.",
)
handler = lambda_handler(app)
