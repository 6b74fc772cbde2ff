"""Marketplace domain: orders, items and inventory as opsdeck stores them, parsed tolerantly.

Both Orders API versions (v0 ``getOrders``/``getOrderItems`` and 2026-01-01 ``searchOrders``)
and FBA inventory summaries are parsed into the same frozen records here, so the sync,
the repository and the HTTP API never see an upstream's JSON shape.

Tolerance, where Amazon is known to be odd: dates may be ISO 8601 with or without
fraction/offset, a bare date, or epoch seconds as a (numeric, even scientific) string —
the static sandbox answers ``"CreatedBefore": "1.569521782042E9"`` and 1970 timestamps.
Money amounts are strings (``Decimal``, never float). Pending orders have no prices. A
value that cannot be parsed becomes ``None`` and a warning; only what makes a record
unusable (no ``AmazonOrderId``, ``Orders`` not a list, not an object) raises
``BadPayload`` — the run then fails and writes nothing.

No SQLAlchemy, no HTTP here: the HTTP handler imports this module at cold start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from opsdeck.errors import UpstreamError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Orders v0 ``OrderStatus`` values (the names opsdeck stores and filters by)
ORDER_STATUSES = (
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "InvoiceUnconfirmed",
    "Canceled",
    "Unfulfillable",
)
#: Orders 2026-01-01 ``fulfillmentStatus`` → the v0 name
V2026_STATUS = {
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
V2026_FULFILLED_BY = {"AMAZON": "AFN", "MERCHANT": "MFN"}
_STATUS_BY_LOWER = {s.lower(): s for s in ORDER_STATUSES}


class BadPayload(UpstreamError):
    """The upstream answered 2xx with something that is not what its API promises (502)."""

    title = "Upstream answered an invalid payload"


# --------------------------------------------------------------------- parsing


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from anything Amazon sends as a date, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if not text:
        return None
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":  # the usual ISO 8601: the fast path
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        return _from_epoch(number)
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    iso = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", iso)  # +0000 → +00:00
    iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)  # nanoseconds → microseconds
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    if abs(seconds) > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None


def parse_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def parse_money(value: Any) -> tuple[Decimal | None, str | None]:
    """``{"CurrencyCode", "Amount"}`` (v0) or ``{"currencyCode", "amount"}`` (2026) → (amount, code)."""
    if not isinstance(value, Mapping):
        return None, None
    amount = parse_decimal(value.get("Amount", value.get("amount")))
    currency = value.get("CurrencyCode", value.get("currencyCode"))
    return amount, (str(currency) if currency else None)


def parse_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        return None


def canonical_status(value: Any) -> str:
    """An order status in v0 spelling; unknown values are kept as sent (Amazon adds statuses)."""
    if not isinstance(value, str) or not value.strip():
        return "Unknown"
    text = value.strip()
    return V2026_STATUS.get(text.upper(), _STATUS_BY_LOWER.get(text.lower(), text))


# ---------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class OrderItem:
    amazon_order_id: str
    order_item_id: str
    asin: str | None
    seller_sku: str | None
    title: str | None
    quantity_ordered: int
    quantity_shipped: int | None
    item_price_amount: Decimal | None
    item_price_currency: str | None
    item_tax_amount: Decimal | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Order:
    amazon_order_id: str
    marketplace_id: str | None
    order_status: str
    purchase_date: datetime | None
    last_update_date: datetime
    fulfillment_channel: str | None
    sales_channel: str | None
    order_total_amount: Decimal | None
    order_total_currency: str | None
    items_shipped: int | None
    items_unshipped: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    #: embedded items (Orders 2026-01-01); None when they must be fetched (v0)
    items: tuple[OrderItem, ...] | None = field(default=None, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class OrdersPage:
    orders: tuple[Order, ...]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class InventorySummary:
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
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadPayload(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadPayload(f"{what} is not a JSON array")
    return value


def _order_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{what} has no AmazonOrderId")
    return value.strip()


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _version(last_update: datetime | None, purchase: datetime | None, warnings: list[str]) -> datetime:
    if last_update is not None:
        return last_update
    warnings.append("LastUpdateDate missing or unparseable")
    return purchase or EPOCH


# --------------------------------------------------------------------- Orders v0


def parse_v0_orders_page(body: Any) -> OrdersPage:
    """A ``getOrders`` response body → orders and the next token."""
    payload = _object(_object(body, "getOrders response").get("payload"), "getOrders payload")
    if "Orders" not in payload:
        raise BadPayload("getOrders payload has no Orders")
    orders = _list(payload.get("Orders"), "payload.Orders")
    parsed = tuple(parse_v0_order(o, f"payload.Orders[{i}]") for i, o in enumerate(orders))
    token = payload.get("NextToken")
    return OrdersPage(parsed, token if isinstance(token, str) and token else None)


def parse_v0_order(raw: Any, what: str = "order") -> Order:
    order = _object(raw, what)
    order_id = _order_id(order.get("AmazonOrderId"), what)
    warnings: list[str] = []
    purchase = parse_time(order.get("PurchaseDate"))
    if purchase is None and order.get("PurchaseDate") not in (None, ""):
        warnings.append("PurchaseDate unparseable")
    last_update = parse_time(order.get("LastUpdateDate"))
    amount, currency = parse_money(order.get("OrderTotal"))
    return Order(
        amazon_order_id=order_id,
        marketplace_id=_text(order.get("MarketplaceId")),
        order_status=canonical_status(order.get("OrderStatus")),
        purchase_date=purchase,
        last_update_date=_version(last_update, purchase, warnings),
        fulfillment_channel=_text(order.get("FulfillmentChannel")),
        sales_channel=_text(order.get("SalesChannel")),
        order_total_amount=amount,
        order_total_currency=currency,
        items_shipped=parse_int(order.get("NumberOfItemsShipped")),
        items_unshipped=parse_int(order.get("NumberOfItemsUnshipped")),
        raw=order,
        items=None,
        warnings=tuple(warnings),
    )


def parse_v0_items_page(body: Any, requested_order_id: str) -> tuple[str, tuple[OrderItem, ...], str | None]:
    """A ``getOrderItems`` body → (the order id the payload names, items, next token)."""
    payload = _object(_object(body, "getOrderItems response").get("payload"), "getOrderItems payload")
    order_id = payload.get("AmazonOrderId")
    order_id = order_id.strip() if isinstance(order_id, str) and order_id.strip() else requested_order_id
    items = tuple(
        parse_v0_item(order_id, item, f"payload.OrderItems[{i}]")
        for i, item in enumerate(_list(payload.get("OrderItems"), "payload.OrderItems"))
    )
    token = payload.get("NextToken")
    return order_id, items, token if isinstance(token, str) and token else None


def parse_v0_item(order_id: str, raw: Any, what: str = "item") -> OrderItem:
    item = _object(raw, what)
    item_id = item.get("OrderItemId")
    if not isinstance(item_id, str | int) or str(item_id).strip() == "":
        raise BadPayload(f"{what} has no OrderItemId")
    price, currency = parse_money(item.get("ItemPrice"))
    tax, _ = parse_money(item.get("ItemTax"))
    return OrderItem(
        amazon_order_id=order_id,
        order_item_id=str(item_id).strip(),
        asin=_text(item.get("ASIN")),
        seller_sku=_text(item.get("SellerSKU")),
        title=_text(item.get("Title")),
        quantity_ordered=parse_int(item.get("QuantityOrdered")) or 0,
        quantity_shipped=parse_int(item.get("QuantityShipped")),
        item_price_amount=price,
        item_price_currency=currency,
        item_tax_amount=tax,
        raw=item,
    )


# ------------------------------------------------------------- Orders 2026-01-01


def parse_v2026_orders_page(body: Any) -> OrdersPage:
    """A ``searchOrders`` response body → orders (items embedded) and the next token."""
    top = _object(body, "searchOrders response")
    if "orders" not in top:
        raise BadPayload("searchOrders response has no orders")
    orders = _list(top.get("orders"), "orders")
    parsed = tuple(parse_v2026_order(o, f"orders[{i}]") for i, o in enumerate(orders))
    pagination = top.get("pagination")
    token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
    return OrdersPage(parsed, token if isinstance(token, str) and token else None)


def parse_v2026_order(raw: Any, what: str = "order") -> Order:
    order = _object(raw, what)
    order_id = order.get("orderId")
    if not isinstance(order_id, str) or not order_id.strip():
        raise BadPayload(f"{what} has no orderId")
    order_id = order_id.strip()
    warnings: list[str] = []
    purchase = parse_time(order.get("createdTime"))
    last_update = parse_time(order.get("lastUpdatedTime"))
    channel = order.get("salesChannel") if isinstance(order.get("salesChannel"), Mapping) else {}
    fulfillment = order.get("fulfillment") if isinstance(order.get("fulfillment"), Mapping) else {}
    proceeds = order.get("proceeds") if isinstance(order.get("proceeds"), Mapping) else {}
    amount, currency = parse_money(proceeds.get("grandTotal"))
    items = tuple(
        parse_v2026_item(order_id, item, f"{what}.orderItems[{i}]")
        for i, item in enumerate(_list(order.get("orderItems"), f"{what}.orderItems"))
    )
    ordered = sum(item.quantity_ordered for item in items)
    shipped = sum(item.quantity_shipped or 0 for item in items)
    return Order(
        amazon_order_id=order_id,
        marketplace_id=_text(channel.get("marketplaceId")),
        order_status=canonical_status(fulfillment.get("fulfillmentStatus")),
        purchase_date=purchase,
        last_update_date=_version(last_update, purchase, warnings),
        fulfillment_channel=V2026_FULFILLED_BY.get(str(fulfillment.get("fulfilledBy"))),
        sales_channel=_text(channel.get("marketplaceName") or channel.get("channelName")),
        order_total_amount=amount,
        order_total_currency=currency,
        items_shipped=shipped if items else None,
        items_unshipped=max(0, ordered - shipped) if items else None,
        raw=order,
        items=items,
        warnings=tuple(warnings),
    )


def parse_v2026_item(order_id: str, raw: Any, what: str = "item") -> OrderItem:
    item = _object(raw, what)
    item_id = item.get("orderItemId")
    if not isinstance(item_id, str | int) or str(item_id).strip() == "":
        raise BadPayload(f"{what} has no orderItemId")
    product = item.get("product") if isinstance(item.get("product"), Mapping) else {}
    price = product.get("price") if isinstance(product.get("price"), Mapping) else {}
    unit, currency = parse_money(price.get("unitPrice"))
    quantity = parse_int(item.get("quantityOrdered")) or 0
    fulfillment = item.get("fulfillment") if isinstance(item.get("fulfillment"), Mapping) else {}
    tax = None
    proceeds = item.get("proceeds") if isinstance(item.get("proceeds"), Mapping) else {}
    for part in proceeds.get("breakdowns") or ():
        if isinstance(part, Mapping) and part.get("type") == "TAX":
            tax, _ = parse_money(part.get("subtotal"))
    return OrderItem(
        amazon_order_id=order_id,
        order_item_id=str(item_id).strip(),
        asin=_text(product.get("asin")),
        seller_sku=_text(product.get("sellerSku")),
        title=_text(product.get("title")),
        quantity_ordered=quantity,
        quantity_shipped=parse_int(fulfillment.get("quantityFulfilled")),
        # v0 ItemPrice is the line total (unit price x quantity); keep that meaning
        item_price_amount=None if unit is None else unit * quantity,
        item_price_currency=currency,
        item_tax_amount=tax,
        raw=item,
    )


# ------------------------------------------------------------------- inventory


def parse_inventory_page(body: Any, marketplace_id: str) -> tuple[tuple[InventorySummary, ...], str | None]:
    """A ``getInventorySummaries`` body → summaries and the next token."""
    top = _object(body, "getInventorySummaries response")
    payload = _object(top.get("payload"), "getInventorySummaries payload")
    raw_items = _list(payload.get("inventorySummaries"), "payload.inventorySummaries")
    summaries = tuple(
        parse_inventory_summary(s, marketplace_id, f"payload.inventorySummaries[{i}]")
        for i, s in enumerate(raw_items)
    )
    pagination = top.get("pagination")
    token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
    return summaries, token if isinstance(token, str) and token else None


def _nested_total(details: Mapping[str, Any], name: str, total: str) -> int | None:
    value = details.get(name)
    return parse_int(value.get(total)) if isinstance(value, Mapping) else None


def parse_inventory_summary(raw: Any, marketplace_id: str, what: str = "summary") -> InventorySummary:
    summary = _object(raw, what)
    sku = summary.get("sellerSku")
    if not isinstance(sku, str) or not sku:
        raise BadPayload(f"{what} has no sellerSku")
    details = summary.get("inventoryDetails") if isinstance(summary.get("inventoryDetails"), Mapping) else {}
    return InventorySummary(
        marketplace_id=marketplace_id,
        seller_sku=sku,
        asin=_text(summary.get("asin")),
        fn_sku=_text(summary.get("fnSku")),
        product_name=_text(summary.get("productName")),
        condition=_text(summary.get("condition")),
        total_quantity=parse_int(summary.get("totalQuantity")),
        fulfillable_quantity=parse_int(details.get("fulfillableQuantity")),
        inbound_working_quantity=parse_int(details.get("inboundWorkingQuantity")),
        inbound_shipped_quantity=parse_int(details.get("inboundShippedQuantity")),
        inbound_receiving_quantity=parse_int(details.get("inboundReceivingQuantity")),
        reserved_quantity=_nested_total(details, "reservedQuantity", "totalReservedQuantity"),
        unfulfillable_quantity=_nested_total(details, "unfulfillableQuantity", "totalUnfulfillableQuantity"),
        researching_quantity=_nested_total(details, "researchingQuantity", "totalResearchingQuantity"),
        last_updated_time=parse_time(summary.get("lastUpdatedTime")) or EPOCH,
        raw=summary,
    )


# ----------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """``LastUpdatedAfter`` ≤ update < ``LastUpdatedBefore`` of one orders run."""

    start: datetime
    end: datetime

    @property
    def empty(self) -> bool:
        return self.end <= self.start


def next_window(
    *,
    watermark: datetime | None,
    now: datetime,
    overlap_s: int,
    lag_s: int,
    initial_lookback_s: int,
    window_s: int,
) -> Window:
    """The window of the next run: from the watermark minus the overlap, at most ``window_s``
    long, ending at least ``lag_s`` before now (Amazon refuses a later ``*Before``)."""
    latest = now - timedelta(seconds=lag_s)
    start = (
        watermark - timedelta(seconds=overlap_s) if watermark else now - timedelta(seconds=initial_lookback_s)
    )
    end = min(latest, start + timedelta(seconds=window_s))
    return Window(start.replace(microsecond=0), end.replace(microsecond=0))


def iso(value: datetime) -> str:
    """SP-API's ISO 8601 form: ``2026-11-22T09:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def latest_by_id(orders: Iterable[Order]) -> list[Order]:
    """One order per id (the newest version): pages may repeat an order updated mid-listing."""
    chosen: dict[str, Order] = {}
    for order in orders:
        seen = chosen.get(order.amazon_order_id)
        if seen is None or order.last_update_date >= seen.last_update_date:
            chosen[order.amazon_order_id] = order
    return list(chosen.values())
