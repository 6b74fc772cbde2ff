"""Amazon Selling Partner API clients: LWA tokens, quotas, Orders (v0 | 2026-01-01), FBA inventory.

One ``SpApiClient`` per seller authorisation and container (cached by configuration)::

    httpx.Client (opsdeck.http.make_client: timeouts always set)
      └─ RetryTransport(SPAPI_RETRY, limiter=OperationLimiter, sleep=deadline-aware)
           └─ QuotaObserver        every attempt: adopt x-amzn-RateLimit-Limit, drain on 429
                └─ HTTPTransport

* **Tokens** — ``LwaAuth`` exchanges the refresh token at LWA, caches the access token
  until shortly before ``expires_in`` (3600 s) runs out and sends it as
  ``x-amz-access-token`` (no SigV4). A 401, or a 403 ``Unauthorized`` (Amazon's answer to
  an expired or revoked token), refreshes once and repeats the call.
* **Quotas** — one shared Redis ``TokenBucket`` per operation and seller at the published
  rate/burst (``QUOTAS``), paced ``SPAPI_RATE_MARGIN`` below it. The operation of the
  request in flight is a context variable, so RetryTransport's single ``limiter`` takes
  every attempt (retries too) from the right bucket. A response's
  ``x-amzn-RateLimit-Limit`` becomes the bucket's rate; a 429 ``QuotaExceeded`` also
  empties the bucket, so the retry waits one token at the advertised rate — backoff that
  honours the header, shared by every Lambda using the quota.
* **Retries** — 429 and 5xx, full jitter (``opsdeck.http``). A 429 left after the retries
  becomes ``UpstreamError`` (502): to a caller of opsdeck, Amazon failed.
* **Deadlines** — inside ``pacing.deadline_scope`` a bucket wait or retry sleep that
  would pass the run's deadline raises ``DeadlineReached`` instead of sleeping (the sync
  then commits what it has, or defers); attempt timeouts shrink to the time left.
* **Versions** — ``OrdersV0`` (getOrders + getOrderItems) and ``Orders2026`` (searchOrders,
  items embedded) share the ``OrdersApi`` interface; ``SPAPI_ORDERS_API`` picks one.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import quote

import httpx

from opsdeck.errors import RateLimited, UpstreamError
from opsdeck.http import RetryPolicy, TokenBucket, make_client, raise_for_upstream
from opsdeck.observability import logger, metric

from .domain import (
    BadPayload,
    InventorySummary,
    OrderItem,
    OrdersPage,
    Window,
    iso,
    parse_int,
    parse_inventory_page,
    parse_v0_items_page,
    parse_v0_orders_page,
    parse_v2026_orders_page,
)
from .pacing import (
    OperationLimiter,
    current_operation,
    deadline_sleep,
    operation_scope,
    request_timeout,
)
from .settings import LwaCredentials, MarketplaceSettings

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True, slots=True)
class Quota:
    rate_per_s: float
    burst: int


#: published usage plans (requests per second, burst)
QUOTAS: Mapping[str, Quota] = {
    "getOrders": Quota(0.0167, 20),
    "getOrderItems": Quota(0.5, 30),
    "searchOrders": Quota(0.0056, 20),
    "getInventorySummaries": Quota(2.0, 2),
}
SPAPI_RETRY = RetryPolicy(max_attempts=5, base_s=0.5, cap_s=10.0, max_retry_after_s=120.0)
LWA_RETRY = RetryPolicy(max_attempts=3, base_s=0.5, cap_s=5.0, retry_methods=frozenset({"POST"}))
USER_AGENT = "opsdeck-marketplace/1.0 (Language=Python)"


class QuotaObserver(httpx.BaseTransport):
    """Sees every attempt's response under RetryTransport (event hooks see only the last)."""

    def __init__(self, inner: httpx.BaseTransport, limiter: OperationLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        operation = current_operation()
        if operation:
            header = response.headers.get("x-amzn-ratelimit-limit")
            if header:
                self.limiter.adopt(operation, header)
            if response.status_code == 429:
                self.limiter.drain(operation)
                metric("SpApiThrottled")
        return response

    def close(self) -> None:
        self.inner.close()


# -------------------------------------------------------------------------- LWA


class LwaAuth:
    """Access tokens from Login with Amazon, cached until shortly before they expire."""

    def __init__(self, token_url: str, creds: LwaCredentials, http: httpx.Client, clock=time.time) -> None:
        self.token_url = token_url
        self._creds = creds
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.refreshes = 0

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            return self._refresh()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the API refused it); the next call refreshes."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _refresh(self) -> str:
        requested = self._clock()
        response = self._http.post(
            self.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._creds.refresh_token,
                "client_id": self._creds.client_id,
                "client_secret": self._creds.client_secret,
            },
            headers={"accept": "application/json"},
            timeout=request_timeout(),
        )
        raise_for_upstream(response, "Amazon LWA")
        try:
            body = response.json()
        except ValueError:
            raise BadPayload("Amazon LWA answered invalid JSON") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadPayload("Amazon LWA answered without an access_token")
        lifetime = parse_int(body.get("expires_in")) or 3600
        self._token = token
        self._refresh_at = requested + lifetime - min(60.0, lifetime * 0.1)
        self.refreshes += 1
        metric("LwaTokenRefresh")
        return token


@functools.cache
def _lwa_http() -> httpx.Client:
    return make_client(retry=LWA_RETRY, headers={"user-agent": USER_AGENT})


@functools.lru_cache(maxsize=8)
def lwa_auth(token_url: str, creds: LwaCredentials) -> LwaAuth:
    """The container's token cache for these credentials (a rotated secret gets a new one)."""
    return LwaAuth(token_url, creds, _lwa_http())


# ------------------------------------------------------------------------ client


class SpApiError(UpstreamError):
    """SP-API answered an error status (after retries); ``status`` tells which."""

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail, upstream_status=status)
        self.upstream_status = status  # never ``status``: that is this error's own HTTP status (502)

    @property
    def about_the_request(self) -> bool:
        """400/404: this one request is refused (e.g. an order's items), not the service down."""
        return self.upstream_status in (400, 404)


def _auth_rejected(response: httpx.Response) -> bool:
    """401, or Amazon's 403 ``Unauthorized`` for an expired/revoked/invalid access token."""
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    try:
        errors = response.json().get("errors") or []
        return any(isinstance(e, dict) and e.get("code") == "Unauthorized" for e in errors)
    except (ValueError, AttributeError):
        return False


class SpApiClient:
    """GETs against one SP-API endpoint for one seller: tokens, quotas, retries, JSON."""

    def __init__(
        self,
        *,
        endpoint: str,
        auth: LwaAuth,
        buckets: Mapping[str, TokenBucket],
        margin: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.auth = auth
        self.limiter = OperationLimiter(buckets, margin)
        self.http = make_client(
            base_url=endpoint,
            retry=SPAPI_RETRY,
            limiter=self.limiter,
            sleep=deadline_sleep,
            transport=QuotaObserver(transport or httpx.HTTPTransport(), self.limiter),
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
        )

    def get(self, operation: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON body of a successful GET, or ``SpApiError``/``BadPayload`` (both 502)."""
        with operation_scope(operation):
            for attempt in (1, 2):
                token = self.auth.token()
                response = self.http.get(
                    path,
                    params=dict(params or {}),
                    headers={"x-amz-access-token": token},
                    timeout=request_timeout(),
                )
                if attempt == 1 and _auth_rejected(response):
                    logger.info("SP-API refused the access token; refreshing", extra={"operation": operation})
                    self.auth.invalidate(token)
                    continue
                break
        try:
            raise_for_upstream(response, f"SP-API {operation}")
        except RateLimited as exc:
            raise SpApiError(f"{exc.detail} (quota still exhausted after retries)", status=429) from None
        except UpstreamError as exc:
            raise SpApiError(exc.detail, status=response.status_code) from None
        try:
            return response.json()
        except ValueError as exc:
            raise BadPayload(
                f"SP-API {operation} answered invalid JSON (HTTP {response.status_code}, "
                f"{len(response.content)} bytes): {exc}"
            ) from None


def buckets_for(
    redis_client: redis.Redis, fingerprint: str, *, scale: float, margin: float
) -> dict[str, TokenBucket]:
    """One shared bucket per operation for this seller, at the published (scaled) rate."""
    return {
        op: TokenBucket(
            redis_client,
            f"marketplace:spapi:{fingerprint}:{op}",
            rate_per_s=q.rate_per_s * scale * (1 - margin),
            burst=q.burst,
        )
        for op, q in QUOTAS.items()
    }


@functools.lru_cache(maxsize=8)
def _client(
    endpoint: str,
    token_url: str,
    creds: LwaCredentials,
    scale: float,
    margin: float,
    redis_client: Any,
) -> SpApiClient:
    buckets = (
        {}
        if redis_client is None
        else buckets_for(redis_client, creds.fingerprint, scale=scale, margin=margin)
    )
    return SpApiClient(endpoint=endpoint, auth=lwa_auth(token_url, creds), buckets=buckets, margin=margin)


def client(settings: MarketplaceSettings, creds: LwaCredentials) -> SpApiClient:
    """The container's client for this configuration (created once, reused across invocations)."""
    redis_client = None
    if settings.spapi_rate_limit:
        from opsdeck import cache

        redis_client = cache.client()
    return _client(
        settings.endpoint,
        settings.token_url,
        creds,
        settings.rate_scale,
        settings.spapi_rate_margin,
        redis_client,
    )


def reset() -> None:
    """Forget every cached client and token (tests, configuration changes)."""
    _client.cache_clear()
    lwa_auth.cache_clear()


# ------------------------------------------------------------------------ Orders


class OrdersApi(Protocol):
    """What the sync needs from an Orders API version."""

    version: str
    #: items arrive with the orders (no getOrderItems calls)
    embeds_items: bool

    def pages(self, window: Window) -> Iterator[OrdersPage]: ...

    def sandbox_pages(self, test_case: str) -> Iterator[OrdersPage]: ...

    def items(self, order_id: str) -> tuple[str, tuple[OrderItem, ...]]: ...


@dataclass(frozen=True)
class OrdersV0:
    """Orders v0: ``getOrders`` by ``LastUpdatedAfter``/``Before``, ``getOrderItems`` per order."""

    version: ClassVar[str] = "v0"
    embeds_items: ClassVar[bool] = False

    api: SpApiClient
    marketplace_id: str
    page_size: int

    def pages(self, window: Window) -> Iterator[OrdersPage]:
        return self._paginate(
            {
                "MarketplaceIds": self.marketplace_id,
                "LastUpdatedAfter": iso(window.start),
                "LastUpdatedBefore": iso(window.end),
                "MaxResultsPerPage": self.page_size,
            }
        )

    def sandbox_pages(self, test_case: str) -> Iterator[OrdersPage]:
        return self._paginate({"MarketplaceIds": self.marketplace_id, "CreatedAfter": test_case})

    def _paginate(self, params: dict[str, Any]) -> Iterator[OrdersPage]:
        while True:
            page = parse_v0_orders_page(self.api.get("getOrders", "/orders/v0/orders", params))
            yield page
            if page.next_token is None:
                return
            # NextToken travels alone with the required parameters (httpx URL-encodes it)
            params = {"MarketplaceIds": self.marketplace_id, "NextToken": page.next_token}

    def items(self, order_id: str) -> tuple[str, tuple[OrderItem, ...]]:
        path = f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems"
        params: dict[str, Any] = {}
        collected: list[OrderItem] = []
        named = order_id
        while True:
            named, items, token = parse_v0_items_page(self.api.get("getOrderItems", path, params), order_id)
            collected.extend(items)
            if token is None:
                return named, tuple(collected)
            params = {"NextToken": token}


@dataclass(frozen=True)
class Orders2026:
    """Orders 2026-01-01: ``searchOrders`` with items, proceeds and fulfillment included."""

    version: ClassVar[str] = "2026-01-01"
    embeds_items: ClassVar[bool] = True
    INCLUDED: ClassVar[str] = "PROCEEDS,FULFILLMENT"

    api: SpApiClient
    marketplace_id: str
    page_size: int

    def pages(self, window: Window) -> Iterator[OrdersPage]:
        return self._paginate(
            {
                "marketplaceIds": self.marketplace_id,
                "lastUpdatedAfter": iso(window.start),
                "lastUpdatedBefore": iso(window.end),
                "maxResultsPerPage": self.page_size,
                "includedData": self.INCLUDED,
            }
        )

    def sandbox_pages(self, test_case: str) -> Iterator[OrdersPage]:
        return self._paginate(
            {"marketplaceIds": self.marketplace_id, "createdAfter": test_case, "includedData": self.INCLUDED}
        )

    def _paginate(self, params: dict[str, Any]) -> Iterator[OrdersPage]:
        first = dict(params)
        while True:
            page = parse_v2026_orders_page(self.api.get("searchOrders", "/orders/2026-01-01/orders", params))
            yield page
            if page.next_token is None:
                return
            params = {**first, "paginationToken": page.next_token}

    def items(self, order_id: str) -> tuple[str, tuple[OrderItem, ...]]:
        raise NotImplementedError("Orders 2026-01-01 embeds the items in every order")


def orders_api(settings: MarketplaceSettings, creds: LwaCredentials) -> OrdersApi:
    api = client(settings, creds)
    kind = Orders2026 if settings.spapi_orders_api == "2026-01-01" else OrdersV0
    return kind(api, settings.spapi_marketplace_id, settings.spapi_page_size)


# --------------------------------------------------------------------- inventory


class FbaInventory:
    """``getInventorySummaries`` at marketplace granularity, with details, all pages.

    Its ``nextToken`` expires 30 s after it was issued, so pages are read back to back
    (the 2 rps quota allows it); every page repeats the original parameters.
    """

    def __init__(self, api: SpApiClient, marketplace_id: str) -> None:
        self.api = api
        self.marketplace_id = marketplace_id

    def pages(self, changed_since: str | None) -> Iterator[tuple[InventorySummary, ...]]:
        first: dict[str, Any] = {
            "details": "true",
            "granularityType": "Marketplace",
            "granularityId": self.marketplace_id,
            "marketplaceIds": self.marketplace_id,
        }
        if changed_since:
            first["startDateTime"] = changed_since
        params = first
        while True:
            body = self.api.get("getInventorySummaries", "/fba/inventory/v1/summaries", params)
            summaries, token = parse_inventory_page(body, self.marketplace_id)
            yield summaries
            if token is None:
                return
            params = {**first, "nextToken": token}


def inventory_api(settings: MarketplaceSettings, creds: LwaCredentials) -> FbaInventory:
    return FbaInventory(client(settings, creds), settings.spapi_marketplace_id)
