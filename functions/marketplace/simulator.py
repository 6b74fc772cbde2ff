"""Simulated upstreams of the marketplace capability (contract B): LWA, SP-API, Slack.

Mounted by the local cloud at ``/_sim/marketplace`` (``environment(base_url)`` points the
functions here, ``secret_values(base_url)`` fills the catalog secrets), run in-process by
tests and the bench (``serve(app)``: uvicorn in a thread on 127.0.0.1:0), or standalone
with ``opsdeck marketplace simulator``. Real HTTP, so the real clients are exercised.
Development tooling: never imported by handlers, not bundled into Lambda.

* ``POST /lwa/auth/o2/token`` — Login with Amazon: ``grant_type=refresh_token`` with the
  simulator's credentials → ``{access_token, token_type, expires_in}``; 400
  ``invalid_grant``/401 ``invalid_client`` otherwise. Tokens expire (``token_ttl_s``);
  an expired token gets Amazon's 403 ``Unauthorized``, a revoked/unknown one a 401.
* ``GET /spapi/orders/v0/orders`` — getOrders with Amazon's rules: ``MarketplaceIds`` and
  exactly one of ``CreatedAfter``/``LastUpdatedAfter``, ``*Before`` ≥ 2 minutes before
  now, ``MaxResultsPerPage`` ≤ 100, ``NextToken`` (a snapshot of the listing, opaque,
  with ``+/=`` so it must be URL-encoded). ``…/{orderId}/orderItems`` — getOrderItems
  (no prices while Pending). ``GET /spapi/orders/2026-01-01/orders`` — searchOrders.
* ``GET /spapi/fba/inventory/v1/summaries`` — marketplace granularity, ``details``,
  ``startDateTime``, 50 per page, ``nextToken`` valid 30 s.
* ``POST /slack/services/…`` — an incoming-webhook sink that records every message; it
  can be told to be down (500), to throttle (429 + ``Retry-After``) or to refuse; it
  also throttles by itself above ~1 message/s (burst 3).

Orders live on a timeline: each has its status transitions (Pending → Unshipped within
minutes, → Shipped within hours, a few Canceled), evaluated at request time, so
``LastUpdateDate`` and statuses change as real time passes; ``order_rate_per_min`` adds
new orders continuously (seeded, reproducible). Every SP-API operation has its own
token bucket at the published rate/burst (``rate_scale`` refills them faster — the
bench's time-scale knob — and ``x-amzn-RateLimit-Limit`` reports the scaled rate);
beyond it: 429 ``QuotaExceeded``, counted per operation in ``stats``. Faults are
injected per operation (``inject``: any status/body, e.g. malformed JSON on page 2).
Canned static-sandbox cases (``load_sandbox_cases``, in Amazon's
``x-amzn-api-sandbox`` format) answer requests that match them, like
``CreatedAfter=TEST_CASE_200`` on ``sandbox.sellingpartnerapi-na.amazon.com``.
"""

from __future__ import annotations

import base64
import json
import math
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from localcloud.server import Served  # one server helper for every simulator
from localcloud.server import serve_simulator as serve

SIM_CLIENT_ID = "amzn1.application-oa2-client.opsdeck-simulator"
SIM_CLIENT_CREDENTIAL = "opsdeck-simulator-client-credential"  # a fake, accepted by the simulator only
SIM_REFRESH = "Atzr|opsdeck-simulator-refresh"
SIM_WEBHOOK_PATH = "/slack/services/T0SIMULATOR/B0SIMULATOR/opsdecksimulatorwebhook00"
MARKETPLACE_ID = "ATVPDKIKX0DER"

#: published usage plans (rate per second, burst) — the same figures the client paces at
PUBLISHED = {
    "getOrders": (0.0167, 20),
    "getOrderItems": (0.5, 30),
    "searchOrders": (0.0056, 20),
    "getInventorySummaries": (2.0, 2),
}
STATUS_V2026 = {
    "PendingAvailability": "PENDING_AVAILABILITY",
    "Pending": "PENDING",
    "Unshipped": "UNSHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
    "InvoiceUnconfirmed": "SHIPPED",
}
PRODUCTS = [
    ("B07XJ8C8F5", "Stainless Steel Water Bottle 750ml", "19.99"),
    ("B08N5WRWNW", "Smart Speaker with Alexa, Charcoal", "49.99"),
    ("B09B8V1LZ3", "Wireless Earbuds, Noise Cancelling", "79.00"),
    ("B07FZ8S74R", "USB-C Charging Cable 2m (2-pack)", "12.49"),
    ("B08C1W5N87", "LED Desk Lamp with Wireless Charger", "34.95"),
    ("B0BSHF7WHW", "Organic Green Tea, 100 bags", "8.99"),
    ("B07PXGQC1Q", "Yoga Mat 6mm, Non-slip", "24.50"),
    ("B09JQMJHXY", "Mechanical Keyboard, Brown Switches", "89.99"),
    ("B0C7BKZ883", "Cast Iron Skillet 26cm", "29.90"),
    ("B08L5TNJHG", "Notebook A5 Dotted, 3-pack", "11.00"),
]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def sp_error(
    status: int, code: str, message: str, details: str = "", headers: dict | None = None
) -> Response:
    body = {"errors": [{"code": code, "message": message, "details": details}]}
    return JSONResponse(body, status_code=status, headers=headers)


# ------------------------------------------------------------------- buckets


class Bucket:
    """An exact token bucket on the monotonic clock, with a little arrival jitter tolerance."""

    def __init__(self, rate: float, burst: int, tolerance_s: float) -> None:
        self.rate, self.burst, self.tolerance_s = rate, burst, tolerance_s
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1 - self.rate * self.tolerance_s:
            self.tokens -= 1
            return True
        return False


# -------------------------------------------------------------------- orders


@dataclass
class SimItem:
    order_item_id: str
    asin: str
    sku: str
    title: str
    quantity: int
    unit_price: Decimal


@dataclass
class SimOrder:
    order_id: str
    marketplace_id: str
    created: float
    #: (at, status) transitions, sorted; the first is the creation
    timeline: list[tuple[float, str]]
    channel: str  # MFN | AFN
    currency: str
    items: list[SimItem]
    city: str = "SEATTLE"
    state_or_region: str = "WA"
    postal_code: str = "98121"

    def state(self, now: float) -> tuple[str, float] | None:
        """(status, last update) as of ``now``; None before the order exists."""
        if self.created > now:
            return None
        status, at = self.timeline[0][1], self.timeline[0][0]
        for when, what in self.timeline:
            if when > now:
                break
            status, at = what, when
        return status, at

    @property
    def total(self) -> Decimal:
        return sum((i.unit_price * i.quantity for i in self.items), Decimal("0"))


@dataclass
class Injection:
    status: int
    body: bytes
    headers: dict[str, str]
    times: int
    after: int
    content_type: str


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0
    arrivals: list[float] = field(default_factory=list)


@dataclass
class Listing:
    ids: list[str]
    offset: int
    page_size: int
    expires: float
    meta: dict[str, Any]


class Simulator:
    """The simulated state; every method is safe to call from any thread."""

    def __init__(
        self,
        *,
        seed: int = 0,
        marketplace_id: str = MARKETPLACE_ID,
        backfill: int = 0,
        backfill_hours: float = 72.0,
        order_rate_per_min: float = 0.0,
        skus: int = 10,
        enforce_limits: bool = True,
        rate_scale: float = 1.0,
        tolerance_s: float = 0.02,
        token_ttl_s: int = 3600,
        static_sandbox: bool = False,
        slack_rate_per_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(seed)  # noqa: S311 - reproducible fake data, not crypto
        self.clock = clock
        self.marketplace_id = marketplace_id
        self.enforce_limits = enforce_limits
        self.rate_scale = rate_scale
        self.tolerance_s = tolerance_s
        self.token_ttl_s = token_ttl_s
        self.static_sandbox = static_sandbox
        self.orders: dict[str, SimOrder] = {}
        self.inventory: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}  # access token → expiry
        self.revoked: set[str] = set()
        self.lwa_calls = 0
        self.quotas = {op: (rate, burst) for op, (rate, burst) in PUBLISHED.items()}
        self.buckets: dict[str, Bucket] = {}
        self.stats: dict[str, Stats] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=200_000)
        self.injections: dict[str, list[Injection]] = {}
        self.canned: dict[str, list[tuple[int, dict[str, str], Any]]] = {}
        self.listings: dict[str, Listing] = {}
        # Slack
        self.slack_messages: list[dict[str, Any]] = []
        self.slack_attempts = 0
        self.slack_mode = "ok"  # ok | down | ratelimited | refuse
        self.slack_retry_after_s = 1
        self.slack_failures: deque[int] = deque()
        self.slack_bucket = Bucket(slack_rate_per_s, 3, 0.0)
        # order flow
        self.order_rate_per_min = order_rate_per_min
        self.next_arrival: float | None = None
        self._add_inventory(skus)
        if backfill:
            now = self.clock()
            start = now - backfill_hours * 3600
            for i in range(backfill):
                self.add_random_order(start + (now - start) * (i + self.rng.random()) / backfill)
        if order_rate_per_min > 0:
            self.next_arrival = self.clock() + self.rng.expovariate(order_rate_per_min / 60)
        self.reset_limits()

    # ------------------------------------------------------------ limits/stats

    def reset_limits(self) -> None:
        """Fresh buckets (full) for every operation."""
        with self.lock:
            self.buckets = {
                op: Bucket(rate * self.rate_scale, burst, self.tolerance_s)
                for op, (rate, burst) in self.quotas.items()
            }

    def override_quota(self, operation: str, rate: float, burst: int) -> None:
        """The usage plan this seller really has (differs from the published one)."""
        with self.lock:
            self.quotas[operation] = (rate, burst)
            self.buckets[operation] = Bucket(rate * self.rate_scale, burst, self.tolerance_s)

    def stat(self, operation: str) -> Stats:
        return self.stats.setdefault(operation, Stats())

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.log if operation is None or e["operation"] == operation]

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "orders": len(self.orders),
                "skus": len(self.inventory),
                "lwa_calls": self.lwa_calls,
                "operations": {
                    op: {"requests": s.requests, "throttled": s.throttled} for op, s in self.stats.items()
                },
                "slack": {
                    "messages": len(self.slack_messages),
                    "attempts": self.slack_attempts,
                    "mode": self.slack_mode,
                },
            }

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        operation: str,
        *,
        status: int = 200,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next ``times`` requests of ``operation`` (after ``after`` more) get this answer.

        ``body`` may be bytes/str (sent as is: malformed JSON is welcome) or JSON data.
        """
        raw = (
            body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
        )
        with self.lock:
            self.injections.setdefault(operation, []).append(
                Injection(status, raw, dict(headers or {}), times, after, "application/json")
            )

    def load_sandbox_cases(
        self, operation: str, cases: list[Mapping[str, Any]], *, status: int = 200
    ) -> None:
        """Static-sandbox cases in the ``x-amzn-api-sandbox.static`` format of Amazon's models."""
        with self.lock:
            for case in cases:
                params = {
                    name: ",".join(spec["value"])
                    if isinstance(spec.get("value"), list)
                    else str(spec.get("value"))
                    for name, spec in case["request"]["parameters"].items()
                }
                self.canned.setdefault(operation, []).append((status, params, case["response"]))

    def revoke_tokens(self) -> None:
        """Every issued access token becomes unknown (401 on use)."""
        with self.lock:
            self.revoked.update(self.tokens)
            self.tokens.clear()

    def expire_tokens(self) -> None:
        """Every issued access token expires now (Amazon's 403 on use)."""
        with self.lock:
            now = self.clock()
            self.tokens = dict.fromkeys(self.tokens, now - 1)

    # ------------------------------------------------------------------ orders

    def _new_id(self) -> str:
        while True:
            candidate = (
                f"{self.rng.choice((111, 112, 113, 114))}-{self.rng.randrange(10**7):07d}-"
                f"{self.rng.randrange(10**7):07d}"
            )
            if candidate not in self.orders:
                return candidate

    def _items(self, count: int | None = None) -> list[SimItem]:
        skus = sorted(self.inventory)
        items = []
        for n in range(count or self.rng.choice((1, 1, 1, 2, 2, 3))):
            sku = self.rng.choice(skus)
            product = self.inventory[sku]
            items.append(
                SimItem(
                    order_item_id=f"{self.rng.randrange(10**13, 10**14)}{n}",
                    asin=product["asin"],
                    sku=sku,
                    title=product["productName"],
                    quantity=self.rng.choice((1, 1, 1, 2, 3)),
                    unit_price=Decimal(product["price"]),
                )
            )
        return items

    def add_order(
        self,
        *,
        created_at: float | None = None,
        status: str = "Pending",
        updated_at: float | None = None,
        order_id: str | None = None,
        channel: str = "MFN",
        currency: str = "USD",
        items: int | None = None,
    ) -> str:
        """One order created at ``created_at`` (default now) that has ``status`` since ``updated_at``."""
        with self.lock:
            created = self.clock() if created_at is None else created_at
            timeline = [(created, "Pending")]
            if status != "Pending":
                timeline.append((updated_at if updated_at is not None else created, status))
            order = SimOrder(
                order_id=order_id or self._new_id(),
                marketplace_id=self.marketplace_id,
                created=created,
                timeline=timeline,
                channel=channel,
                currency=currency,
                items=self._items(items),
            )
            self.orders[order.order_id] = order
            self._consume_stock(order)
            return order.order_id

    def add_orders(self, count: int, *, start: float, end: float, status: str = "Unshipped") -> list[str]:
        """``count`` orders created evenly over [start, end), each in ``status`` a minute later."""
        with self.lock:
            span = (end - start) / max(count, 1)
            return [
                self.add_order(
                    created_at=start + i * span,
                    status=status,
                    updated_at=min(end, start + i * span + 60) if status != "Pending" else None,
                    items=1,
                )
                for i in range(count)
            ]

    def add_random_order(self, created: float) -> str:
        """An order with a realistic future: paid within minutes, shipped within hours, some canceled."""
        rng = self.rng
        with self.lock:
            channel = "AFN" if rng.random() < 0.4 else "MFN"
            order_id = self.add_order(created_at=created, channel=channel)
            order = self.orders[order_id]
            paid = created + rng.uniform(120, 600)
            if rng.random() < 0.04:
                order.timeline.append((created + rng.uniform(300, 3600), "Canceled"))
                return order_id
            order.timeline.append((paid, "Unshipped"))
            shipped = paid + rng.uniform(3600, (8 if channel == "AFN" else 36) * 3600)
            if len(order.items) > 1 and rng.random() < 0.3:
                order.timeline.append(((paid + shipped) / 2, "PartiallyShipped"))
            order.timeline.append((shipped, "Shipped"))
            return order_id

    def set_status(self, order_id: str, status: str, *, at: float | None = None) -> None:
        """``status`` from ``at`` (default now) on; later planned transitions are dropped."""
        with self.lock:
            order = self.orders[order_id]
            when = self.clock() if at is None else at
            order.timeline = [t for t in order.timeline if t[0] < when] + [(when, status)]

    def _flow(self, now: float) -> None:
        if self.next_arrival is None:
            return
        rate = self.order_rate_per_min / 60
        while self.next_arrival <= now:
            self.add_random_order(self.next_arrival)
            self.next_arrival += self.rng.expovariate(rate)

    # --------------------------------------------------------------- inventory

    def _add_inventory(self, count: int) -> None:
        now = self.clock()
        for i in range(count):
            asin, title, price = PRODUCTS[i % len(PRODUCTS)]
            sku = f"OPS-{asin[-5:]}-{i:03d}"
            self.inventory[sku] = {
                "asin": asin,
                "fnSku": f"X00{self.rng.randrange(10**7):07d}",
                "productName": title if i < len(PRODUCTS) else f"{title} ({i // len(PRODUCTS) + 1})",
                "price": price,
                "condition": "NewItem",
                "fulfillable": self.rng.randrange(0, 400),
                "inboundWorking": self.rng.choice((0, 0, 24, 48)),
                "inboundShipped": self.rng.choice((0, 0, 0, 60)),
                "inboundReceiving": 0,
                "reserved": self.rng.randrange(0, 12),
                "unfulfillable": self.rng.choice((0, 0, 1, 2)),
                "researching": 0,
                "lastUpdated": now - self.rng.uniform(0, 7 * 86400),
            }

    def set_stock(self, sku: str, *, fulfillable: int, at: float | None = None) -> None:
        with self.lock:
            self.inventory[sku]["fulfillable"] = fulfillable
            self.inventory[sku]["lastUpdated"] = self.clock() if at is None else at

    def _consume_stock(self, order: SimOrder) -> None:
        if order.channel != "AFN":
            return
        for item in order.items:
            stock = self.inventory.get(item.sku)
            if stock is not None:
                stock["fulfillable"] = max(0, stock["fulfillable"] - item.quantity)
                stock["lastUpdated"] = max(stock["lastUpdated"], order.created)

    # ------------------------------------------------------------- rendering

    def v0_order(self, order: SimOrder, now: float) -> dict[str, Any] | None:
        state = order.state(now)
        if state is None:
            return None
        status, updated = state
        shipped = 0
        quantity = sum(i.quantity for i in order.items)
        if status == "Shipped":
            shipped = quantity
        elif status == "PartiallyShipped":
            shipped = max(1, quantity // 2)
        body: dict[str, Any] = {
            "AmazonOrderId": order.order_id,
            "PurchaseDate": iso(order.created),
            "LastUpdateDate": iso(updated),
            "OrderStatus": status,
            "FulfillmentChannel": order.channel,
            "SalesChannel": "Amazon.com",
            "ShipServiceLevel": "Std US D2D Dom",
            "NumberOfItemsShipped": shipped,
            "NumberOfItemsUnshipped": 0 if status == "Canceled" else quantity - shipped,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "MarketplaceId": order.marketplace_id,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": "StandardOrder",
            "EarliestShipDate": iso(order.created + 86400),
            "LatestShipDate": iso(order.created + 3 * 86400),
            "IsBusinessOrder": False,
            "IsPrime": order.channel == "AFN",
            "IsPremiumOrder": False,
            "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": False,
            "IsSoldByAB": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
        }
        if status not in ("Pending", "PendingAvailability"):
            body["OrderTotal"] = {"CurrencyCode": order.currency, "Amount": str(order.total)}
            body["ShippingAddress"] = {
                "City": order.city,
                "StateOrRegion": order.state_or_region,
                "PostalCode": order.postal_code,
                "CountryCode": "US",
            }
        return body

    def v0_items(self, order: SimOrder, now: float) -> list[dict[str, Any]]:
        status = (order.state(now) or ("Pending", 0))[0]
        items = []
        for item in order.items:
            body: dict[str, Any] = {
                "ASIN": item.asin,
                "SellerSKU": item.sku,
                "OrderItemId": item.order_item_id,
                "Title": item.title,
                "QuantityOrdered": item.quantity,
                "QuantityShipped": item.quantity if status == "Shipped" else 0,
                "ProductInfo": {"NumberOfItems": "1"},
                "IsGift": "false",
                "ConditionId": "New",
                "ConditionSubtypeId": "New",
                "IsTransparency": False,
                "SerialNumberRequired": False,
            }
            if status not in ("Pending", "PendingAvailability"):
                line = item.unit_price * item.quantity
                tax = (line * Decimal("0.0825")).quantize(Decimal("0.01"))
                body["ItemPrice"] = {"CurrencyCode": order.currency, "Amount": str(line)}
                body["ItemTax"] = {"CurrencyCode": order.currency, "Amount": str(tax)}
                body["PromotionDiscount"] = {"CurrencyCode": order.currency, "Amount": "0.00"}
            items.append(body)
        return items

    def v2026_order(self, order: SimOrder, now: float) -> dict[str, Any] | None:
        state = order.state(now)
        if state is None:
            return None
        status, updated = state
        priced = status not in ("Pending", "PendingAvailability")
        items = []
        for item in order.items:
            fulfilled = item.quantity if status == "Shipped" else 0
            body: dict[str, Any] = {
                "orderItemId": item.order_item_id,
                "quantityOrdered": item.quantity,
                "product": {
                    "asin": item.asin,
                    "title": item.title,
                    "sellerSku": item.sku,
                    "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                },
                "fulfillment": {
                    "quantityFulfilled": fulfilled,
                    "quantityUnfulfilled": item.quantity - fulfilled,
                },
            }
            if priced:
                body["product"]["price"] = {
                    "unitPrice": {"amount": str(item.unit_price), "currencyCode": order.currency}
                }
            items.append(body)
        result: dict[str, Any] = {
            "orderId": order.order_id,
            "createdTime": iso(order.created),
            "lastUpdatedTime": iso(updated),
            "programs": ["PRIME"] if order.channel == "AFN" else [],
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": order.marketplace_id,
                "marketplaceName": "Amazon.com",
            },
            "fulfillment": {
                "fulfillmentStatus": STATUS_V2026.get(status, status.upper()),
                "fulfilledBy": "AMAZON" if order.channel == "AFN" else "MERCHANT",
                "fulfillmentServiceLevel": "STANDARD",
            },
            "orderItems": items,
        }
        if priced:
            result["proceeds"] = {"grandTotal": {"amount": str(order.total), "currencyCode": order.currency}}
        return result

    def inventory_summary(self, sku: str, details: bool) -> dict[str, Any]:
        s = self.inventory[sku]
        total = (
            s["fulfillable"]
            + s["inboundWorking"]
            + s["inboundShipped"]
            + s["inboundReceiving"]
            + s["reserved"]
        )
        body: dict[str, Any] = {
            "asin": s["asin"],
            "fnSku": s["fnSku"],
            "sellerSku": sku,
            "condition": s["condition"],
            "lastUpdatedTime": iso(s["lastUpdated"]),
            "productName": s["productName"],
            "totalQuantity": total + s["unfulfillable"],
        }
        if details:
            body["inventoryDetails"] = {
                "fulfillableQuantity": s["fulfillable"],
                "inboundWorkingQuantity": s["inboundWorking"],
                "inboundShippedQuantity": s["inboundShipped"],
                "inboundReceivingQuantity": s["inboundReceiving"],
                "reservedQuantity": {
                    "totalReservedQuantity": s["reserved"],
                    "pendingCustomerOrderQuantity": s["reserved"],
                    "pendingTransshipmentQuantity": 0,
                    "fcProcessingQuantity": 0,
                },
                "researchingQuantity": {
                    "totalResearchingQuantity": s["researching"],
                    "researchingQuantityBreakdown": [],
                },
                "unfulfillableQuantity": {
                    "totalUnfulfillableQuantity": s["unfulfillable"],
                    "customerDamagedQuantity": s["unfulfillable"],
                    "warehouseDamagedQuantity": 0,
                    "distributorDamagedQuantity": 0,
                    "carrierDamagedQuantity": 0,
                    "defectiveQuantity": 0,
                    "expiredQuantity": 0,
                },
            }
        return body

    # -------------------------------------------------------------- listings

    def _token(self) -> str:
        # Opaque and full of characters that must be URL-encoded, like Amazon's.
        return base64.b64encode(secrets.token_bytes(30)).decode().replace("A", "+", 2) + "=="

    def paginate(
        self, ids: list[str], page_size: int, meta: dict[str, Any], ttl_s: float
    ) -> tuple[list[str], str | None]:
        page, rest = ids[:page_size], ids[page_size:]
        if not rest:
            return page, None
        token = self._token()
        self.listings[token] = Listing(ids, page_size, page_size, self.clock() + ttl_s, meta)
        return page, token

    def continue_listing(self, token: str) -> tuple[list[str], str | None, Listing] | None:
        listing = self.listings.pop(token, None)
        if listing is None or listing.expires < self.clock():
            return None
        start = listing.offset
        page = listing.ids[start : start + listing.page_size]
        listing.offset += listing.page_size
        if listing.offset >= len(listing.ids):
            return page, None, listing
        new = self._token()
        listing.expires = self.clock() + (listing.meta.get("ttl_s") or 300)
        self.listings[new] = listing
        return page, new, listing


# ------------------------------------------------------------------ the app


def _params(request: Request) -> dict[str, str]:
    """Query parameters; a repeated key is joined by commas (SP-API lists are CSV)."""
    merged: dict[str, str] = {}
    for key, value in parse_qsl(request.url.query, keep_blank_values=True):
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _matches(case: dict[str, str], params: Mapping[str, str]) -> bool:
    return all(params.get(k) == v for k, v in case.items())


def create_app(simulator: Simulator | None = None) -> Starlette:
    """The simulated upstreams as one ASGI app (default: a demo shop with a steady order flow)."""
    sim = simulator or Simulator(seed=7, backfill=40, backfill_hours=72, order_rate_per_min=0.5, skus=25)

    def gate(operation: str, request: Request, params: dict[str, str]) -> Response | None:
        """Authentication, quota, injected faults and canned cases — in Amazon's order."""
        now = sim.clock()
        stat = sim.stat(operation)
        stat.requests += 1
        stat.arrivals.append(time.monotonic())
        token = request.headers.get("x-amz-access-token", "")
        entry = {"operation": operation, "params": params, "at": now, "status": 200}
        sim.log.append(entry)
        if not token:
            entry["status"] = 403
            return sp_error(
                403, "Unauthorized", "Access to requested resource is denied.", "Missing access token"
            )
        expiry = sim.tokens.get(token)
        if expiry is None:
            entry["status"] = 401
            return sp_error(
                401,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided is revoked, malformed or invalid.",
            )
        if expiry <= now:
            entry["status"] = 403
            return sp_error(
                403,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided has expired.",
            )
        rate_header = {}
        if sim.enforce_limits:
            rate = sim.quotas[operation][0] * sim.rate_scale
            rate_header = {"x-amzn-RateLimit-Limit": f"{rate:g}"}
            if not sim.buckets[operation].take():
                stat.throttled += 1
                entry["status"] = 429
                return sp_error(
                    429,
                    "QuotaExceeded",
                    "You exceeded your quota for the requested resource.",
                    headers=rate_header,
                )
        request.state.rate_header = rate_header
        queue = sim.injections.get(operation)
        if queue:
            injection = queue[0]
            if injection.after > 0:
                injection.after -= 1
            else:
                injection.times -= 1
                if injection.times <= 0:
                    queue.pop(0)
                entry["status"] = injection.status
                return Response(
                    injection.body,
                    status_code=injection.status,
                    headers={**rate_header, **injection.headers},
                    media_type=injection.content_type,
                )
        for status, case, response in sim.canned.get(operation, ()):
            if _matches(case, params):
                entry["status"] = status
                return JSONResponse(response, status_code=status, headers=rate_header)
        if sim.static_sandbox or any(v.startswith("TEST_CASE") for v in params.values()):
            entry["status"] = 400
            return sp_error(400, "InvalidInput", "Could not match input arguments")
        return None

    def ok(request: Request, body: Any) -> Response:
        return JSONResponse(body, headers=getattr(request.state, "rate_header", {}))

    def bad(message: str) -> Response:
        return sp_error(400, "InvalidInput", message)

    # -------------------------------------------------------------------- LWA

    async def lwa_token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        with sim.lock:
            sim.lwa_calls += 1
            if form.get("grant_type") != "refresh_token":
                return JSONResponse(
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "grant_type must be refresh_token",
                    },
                    400,
                )
            if form.get("client_id") != SIM_CLIENT_ID or form.get("client_secret") != SIM_CLIENT_CREDENTIAL:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "Client authentication failed"}, 401
                )
            if form.get("refresh_token") != SIM_REFRESH:
                return JSONResponse(
                    {
                        "error": "invalid_grant",
                        "error_description": "The request has an invalid grant parameter : refresh_token",
                    },
                    400,
                )
            token = "Atza|" + secrets.token_urlsafe(48)
            sim.tokens[token] = sim.clock() + sim.token_ttl_s
            return JSONResponse(
                {
                    "access_token": token,
                    "refresh_token": SIM_REFRESH,
                    "token_type": "bearer",
                    "expires_in": sim.token_ttl_s,
                }
            )

    # ---------------------------------------------------------------- orders v0

    def _window(params: dict[str, str], names: tuple[str, str, str, str], now: float):
        created_after, created_before, updated_after, updated_before = (params.get(n) for n in names)
        if bool(created_after) == bool(updated_after):
            return f"exactly one of {names[0]} or {names[2]} is required"
        if updated_after and created_before:
            return f"{names[1]} cannot be set when {names[2]} is set"
        try:
            lo = parse_iso(created_after or updated_after or "")
            hi = (
                parse_iso(created_before or updated_before)
                if (created_before or updated_before)
                else now - 120
            )
        except ValueError:
            return "dates must be ISO 8601"
        if hi > now - 120:
            name = names[1] if created_before else names[3]
            return f"{name} must be at least 2 minutes before the time of the request"
        if hi < lo:
            return "the Before date must be equal to or after the After date"
        return ("created" if created_after else "updated", lo, hi)

    def _select(kind: str, lo: float, hi: float, now: float) -> list[str]:
        sim._flow(now)
        matched = []
        for order in sim.orders.values():
            state = order.state(now)
            if state is None:
                continue
            at = order.created if kind == "created" else state[1]
            if lo <= at <= hi:
                matched.append((at, order.order_id))
        return [order_id for _, order_id in sorted(matched)]

    async def get_orders(request: Request) -> Response:
        params = _params(request)
        with sim.lock:
            refused = gate("getOrders", request, params)
            if refused is not None:
                return refused
            now = sim.clock()
            if not params.get("MarketplaceIds"):
                return bad("MarketplaceIds is required")
            if params.get("NextToken"):
                found = sim.continue_listing(params["NextToken"])
                if found is None:
                    return bad("Invalid NextToken")
                ids, token, listing = found
                meta = listing.meta
            else:
                names = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
                window = _window(params, names, now)
                if isinstance(window, str):
                    return bad(window)
                size = int(params.get("MaxResultsPerPage") or 100)
                if not 1 <= size <= 100:
                    return bad("MaxResultsPerPage must be between 1 and 100")
                kind, lo, hi = window
                meta = {"CreatedBefore" if kind == "created" else "LastUpdatedBefore": iso(hi), "ttl_s": 300}
                ids, token = sim.paginate(_select(kind, lo, hi, now), size, meta, 300)
            orders = [o for o in (sim.v0_order(sim.orders[i], now) for i in ids) if o is not None]
            payload: dict[str, Any] = {"Orders": orders}
            payload.update({k: v for k, v in meta.items() if k != "ttl_s"})
            if token:
                payload["NextToken"] = token
            return ok(request, {"payload": payload})

    async def get_order_items(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        params = _params(request)
        with sim.lock:
            refused = gate("getOrderItems", request, {**params, "orderId": order_id})
            if refused is not None:
                return refused
            order = sim.orders.get(order_id)
            now = sim.clock()
            if order is None or order.state(now) is None:
                return sp_error(404, "NotFound", "Order not found", f"No order {order_id}")
            return ok(
                request, {"payload": {"AmazonOrderId": order_id, "OrderItems": sim.v0_items(order, now)}}
            )

    # --------------------------------------------------------- orders 2026-01-01

    async def search_orders(request: Request) -> Response:
        params = _params(request)
        with sim.lock:
            refused = gate("searchOrders", request, params)
            if refused is not None:
                return refused
            now = sim.clock()
            if params.get("paginationToken"):
                found = sim.continue_listing(params["paginationToken"])
                if found is None:
                    return bad("Invalid paginationToken")
                ids, token, listing = found
                meta = listing.meta
            else:
                names = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
                window = _window(params, names, now)
                if isinstance(window, str):
                    return bad(window)
                size = int(params.get("maxResultsPerPage") or 100)
                if not 1 <= size <= 100:
                    return bad("maxResultsPerPage must be between 1 and 100")
                kind, lo, hi = window
                meta = {"createdBefore" if kind == "created" else "lastUpdatedBefore": iso(hi), "ttl_s": 300}
                ids, token = sim.paginate(_select(kind, lo, hi, now), size, meta, 300)
            orders = [o for o in (sim.v2026_order(sim.orders[i], now) for i in ids) if o is not None]
            body: dict[str, Any] = {"orders": orders}
            body.update({k: v for k, v in meta.items() if k != "ttl_s"})
            if token:
                body["pagination"] = {"nextToken": token}
            return ok(request, body)

    # ------------------------------------------------------------------ inventory

    async def inventory_summaries(request: Request) -> Response:
        params = _params(request)
        with sim.lock:
            refused = gate("getInventorySummaries", request, params)
            if refused is not None:
                return refused
            if params.get("granularityType") != "Marketplace" or not params.get("granularityId"):
                return bad("granularityType=Marketplace and granularityId are required")
            if not params.get("marketplaceIds"):
                return bad("marketplaceIds is required")
            details = params.get("details", "false").lower() == "true"
            if params.get("nextToken"):
                found = sim.continue_listing(params["nextToken"])
                if found is None:
                    return bad("nextToken is invalid or expired (it is valid 30 seconds)")
                skus, token, _ = found
            else:
                since = None
                if params.get("startDateTime"):
                    try:
                        since = parse_iso(params["startDateTime"])
                    except ValueError:
                        return bad("startDateTime must be ISO 8601")
                chosen = sorted(
                    s for s, v in sim.inventory.items() if since is None or v["lastUpdated"] >= since
                )
                skus, token = sim.paginate(chosen, 50, {"ttl_s": 30}, 30)
            body: dict[str, Any] = {
                "payload": {
                    "granularity": {
                        "granularityType": "Marketplace",
                        "granularityId": params["granularityId"],
                    },
                    "inventorySummaries": [sim.inventory_summary(s, details) for s in skus],
                }
            }
            if token:
                body["pagination"] = {"nextToken": token}
            return ok(request, body)

    # ---------------------------------------------------------------------- Slack

    async def slack_webhook(request: Request) -> Response:
        raw = await request.body()
        with sim.lock:
            sim.slack_attempts += 1
            if sim.slack_failures:
                status = sim.slack_failures.popleft()
                headers = {"retry-after": str(sim.slack_retry_after_s)} if status == 429 else {}
                return PlainTextResponse(
                    "rate_limited" if status == 429 else "internal_error", status, headers=headers
                )
            if sim.slack_mode == "down":
                return PlainTextResponse("internal_error", 500)
            if sim.slack_mode == "ratelimited":
                return PlainTextResponse(
                    "rate_limited", 429, headers={"retry-after": str(sim.slack_retry_after_s)}
                )
            if sim.slack_mode == "refuse":
                return PlainTextResponse("no_service", 404)
            try:
                payload = json.loads(raw)
            except ValueError:
                return PlainTextResponse("invalid_payload", 400)
            if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
                return PlainTextResponse("no_text", 400)
            if not sim.slack_bucket.take():
                return PlainTextResponse("rate_limited", 429, headers={"retry-after": "1"})
            sim.slack_messages.append({"at": sim.clock(), "path": request.url.path, "payload": payload})
            return PlainTextResponse("ok")

    # -------------------------------------------------------------------- control

    async def control_state(request: Request) -> Response:
        return JSONResponse(sim.summary())

    async def control_orders(request: Request) -> Response:
        body = await request.json() if (await request.body()) else {}
        with sim.lock:
            now = sim.clock()
            if body.get("order_ids"):  # given ids (the contract test's example order), Unshipped
                wanted = [str(i) for i in body["order_ids"]][:500]
                ids = [
                    sim.add_order(created_at=now - 600, status="Unshipped", updated_at=now - 300, order_id=i)
                    for i in wanted
                    if i not in sim.orders
                ]
                return JSONResponse({"created": ids})
            count = max(1, min(int(body.get("count", 1)), 500))
            ids = [sim.add_random_order(now - 180 - i) for i in range(count)]
        return JSONResponse({"created": ids})

    async def control_slack(request: Request) -> Response:
        body = await request.json()
        mode = body.get("mode", "ok")
        if mode not in ("ok", "down", "ratelimited", "refuse"):
            return JSONResponse({"error": "mode is ok | down | ratelimited | refuse"}, 400)
        with sim.lock:
            sim.slack_mode = mode
        return JSONResponse({"mode": mode})

    async def control_quota(request: Request) -> Response:
        """``{"operation", "rate", "burst"}``: the seller's real plan; ``{"reset": true}``: published."""
        body = await request.json()
        with sim.lock:
            if body.get("reset"):
                sim.quotas = dict(PUBLISHED)
                sim.reset_limits()
                return JSONResponse({"quotas": sim.quotas})
            if body.get("operation") not in PUBLISHED:
                return JSONResponse({"error": f"operation is one of {', '.join(PUBLISHED)}"}, 400)
            sim.override_quota(body["operation"], float(body["rate"]), int(body["burst"]))
            return JSONResponse({"quotas": sim.quotas})

    async def control_slack_messages(request: Request) -> Response:
        with sim.lock:
            return JSONResponse({"messages": list(sim.slack_messages)})

    app = Starlette(
        routes=[
            Route("/lwa/auth/o2/token", lwa_token, methods=["POST"]),
            Route("/spapi/orders/v0/orders", get_orders, methods=["GET"]),
            Route("/spapi/orders/v0/orders/{order_id}/orderItems", get_order_items, methods=["GET"]),
            Route("/spapi/orders/2026-01-01/orders", search_orders, methods=["GET"]),
            Route("/spapi/fba/inventory/v1/summaries", inventory_summaries, methods=["GET"]),
            Route("/slack/services/{path:path}", slack_webhook, methods=["POST"]),
            Route("/_control/state", control_state, methods=["GET"]),
            Route("/_control/orders", control_orders, methods=["POST"]),
            Route("/_control/slack", control_slack, methods=["POST"]),
            Route("/_control/slack/messages", control_slack_messages, methods=["GET"]),
            Route("/_control/quota", control_quota, methods=["POST"]),
        ]
    )
    app.state.simulator = sim
    return app


def environment(base_url: str) -> dict[str, str]:
    """Variables that point the marketplace functions at the simulator mounted at ``base_url``.

    Credentials are not here: the local cloud stores ``secret_values(base_url)`` in its Secrets
    Manager and the functions read them as on AWS (``marketplace-spapi``, ``marketplace-slack``).
    """
    base = base_url.rstrip("/")
    return {
        "SPAPI_ENDPOINT": base + "/spapi",
        "LWA_TOKEN_URL": base + "/lwa/auth/o2/token",
        "SPAPI_MARKETPLACE_ID": MARKETPLACE_ID,
    }


def secret_values(base_url: str) -> dict[str, dict[str, str]]:
    """The catalog secrets' values for the simulator (the local cloud's Secrets Manager holds them)."""
    return {
        "marketplace-spapi": {
            "client_id": SIM_CLIENT_ID,
            "client_secret": SIM_CLIENT_CREDENTIAL,
            "refresh_token": SIM_REFRESH,
        },
        "marketplace-slack": {"webhook_url": base_url.rstrip("/") + SIM_WEBHOOK_PATH},
    }


def local_environment(base_url: str) -> dict[str, str]:
    """``environment`` plus the credentials as plain variables (tests, bench, a shell)."""
    creds = secret_values(base_url)
    return {
        **environment(base_url),
        "SPAPI_CLIENT_ID": creds["marketplace-spapi"]["client_id"],
        "SPAPI_CLIENT_SECRET": creds["marketplace-spapi"]["client_secret"],
        "SPAPI_REFRESH_TOKEN": creds["marketplace-spapi"]["refresh_token"],
        "SLACK_WEBHOOK_URL": creds["marketplace-slack"]["webhook_url"],
    }


def published_minimum_s(requests: Mapping[str, int], rate_scale: float = 1.0) -> float:
    """The least wall time the published quotas allow for these request counts, one after another."""
    total = 0.0
    for operation, count in requests.items():
        rate, burst = PUBLISHED[operation]
        total += max(0, count - burst) / (rate * rate_scale)
    return total if math.isfinite(total) else 0.0


__all__ = [
    "PUBLISHED",
    "Served",
    "Simulator",
    "create_app",
    "environment",
    "local_environment",
    "published_minimum_s",
    "secret_values",
    "serve",
]
