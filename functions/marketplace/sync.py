"""The orders and inventory syncs: one code path for the schedule, the API and the CLI.

An orders run, under a Redis run lock (concurrent runs never fetch the same window twice):

1. **window** — ``LastUpdatedAfter`` = stored watermark minus ``SYNC_OVERLAP_S``
   (first run: ``SYNC_INITIAL_LOOKBACK_S`` ago), ``LastUpdatedBefore`` = at most
   ``SYNC_MAX_WINDOW_S`` later and at least ``SYNC_LAG_S`` (≥ 2 min) before now. The
   static sandbox instead gets its canned test case (``CreatedAfter=TEST_CASE_200``).
2. **list** — every page (``NextToken``), into memory: nothing is written yet.
3. **items** — for orders not stored yet and orders whose status changed since their
   items were fetched (v0 ``getOrderItems``; 2026-01-01 embeds them).
4. **write, atomically** — one transaction: bulk upsert of orders (version guard
   ``last_update_date``: the overlap's repeats are skipped) and items; an outbox row per
   order the upsert *inserted* — the single place where "new" is decided, so a run that
   fails writes neither order nor notification and the retry finds both new again; the
   watermark (compare-and-set) and the run record. Bad JSON anywhere before this point
   fails the run with the reason and nothing is half-written.
5. **notify** — after commit, ``slack.deliver_pending``; its failures are recorded on the
   run but never fail or roll back the sync.

Deadlines: a wait that would pass the run's deadline stops the run. While listing
(step 2) nothing is written: the run is ``deferred`` and the next window is halved so
a backlog always fits eventually. While fetching items (step 3) what is complete is
committed: the run is ``partial``, the watermark stays, and the next run re-reads the
window — stored orders are skipped, only the missing items are fetched.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opsdeck import db
from opsdeck.errors import Conflict, OpsdeckError, Unavailable
from opsdeck.naming import function_name_env
from opsdeck.observability import logger, metric

from . import repository, slack, spapi
from .domain import InventorySummary, Order, OrderItem, Window, iso, latest_by_id, next_window
from .pacing import Deadline, DeadlineReached, deadline_scope
from .settings import LwaCredentials, MarketplaceSettings, credentials, load

ORDERS, INVENTORY = "orders", "inventory"
ORDERS_FUNCTION = "marketplace-orders-sync"
LOCK_TTL_MAX_S = 960  # the longest Lambda (900 s) plus a margin
MIN_WINDOW_S = 300


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunResult:
    """What a run did, as ``POST /orders/sync`` and the scheduled handler return it."""

    run_id: int | None
    status: str  # succeeded | partial | deferred | failed | running (another run holds the lock)
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
    pages: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.update(body.pop("extra"))
        return {k: v for k, v in body.items() if v is not None}


# ---------------------------------------------------------------------- run lock

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_SET_RUN = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end return 0"
)


class RunLock:
    """``SET NX PX`` in Redis; value ``<token>:<run id>``; released only by its holder."""

    def __init__(self, stream: str, ttl_s: float) -> None:
        from opsdeck import cache

        self.key = f"marketplace:run-lock:{stream}"
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = secrets.token_hex(8)
        self.value = self.token + ":"
        self._redis = cache.client()

    def _call(self, fn, *args, **kwargs):
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise Unavailable(f"run lock unavailable (cache): {type(exc).__name__}") from exc

    def acquire(self) -> bool:
        return bool(self._call(self._redis.set, self.key, self.value, nx=True, px=self.ttl_ms))

    def attach(self, run_id: int) -> None:
        new = f"{self.token}:{run_id}"
        self._call(self._redis.eval, _SET_RUN, 1, self.key, self.value, new)
        self.value = new

    def holder(self) -> int | None:
        raw = self._call(self._redis.get, self.key)
        run = (raw.decode() if isinstance(raw, bytes) else str(raw or "")).partition(":")[2]
        return int(run) if run.isdigit() else None

    def release(self) -> None:
        try:
            self._call(self._redis.eval, _RELEASE, 1, self.key, self.value)
        except Unavailable:
            logger.warning("run lock not released; it expires on its own", extra={"key": self.key})


def _lock_ttl(deadline: Deadline) -> float:
    left = deadline.remaining()
    return LOCK_TTL_MAX_S if left == float("inf") else min(LOCK_TTL_MAX_S, left + 60)


def _credentials_or_fail(settings: MarketplaceSettings, kind: str, trigger: str):
    try:
        return credentials(settings)
    except OpsdeckError as exc:  # missing or unreadable credentials: recorded, then 503
        now = utcnow()
        run_id = repository.start_run(kind, trigger, api_version=None, now=now)
        repository.close_run(run_id, status="failed", finished_at=now, error=exc.detail)
        exc.extra["run_id"] = run_id
        metric("SyncFailed")
        raise


# ------------------------------------------------------------------------ orders


@dataclass
class _Fetched:
    orders: list[Order]
    items: dict[str, tuple[OrderItem, ...]]
    items_status: dict[str, str]
    pages: int
    complete: bool
    errors: int
    error: str | None


def run_orders_sync(
    *, trigger: str, deadline: Deadline, settings: MarketplaceSettings | None = None
) -> RunResult:
    """One orders run (see the module docstring). Raises ``OpsdeckError`` when it failed."""
    settings = settings or load()
    creds = _credentials_or_fail(settings, ORDERS, trigger)
    stream = f"{ORDERS}:{settings.spapi_marketplace_id}"
    lock = RunLock(stream, _lock_ttl(deadline))
    if not lock.acquire():
        return RunResult(run_id=lock.holder(), status="running")
    try:
        api = spapi.orders_api(settings, creds)
        started = utcnow()
        run_id = repository.start_run(ORDERS, trigger, api_version=api.version, now=started)
        lock.attach(run_id)
        repository.abandon_stale_runs(ORDERS, current=run_id, now=started)
        clock = time.perf_counter()
        with deadline_scope(deadline):
            result = _orders_run(run_id, settings, api, stream)
            metric("SyncDuration", time.perf_counter() - clock, "Seconds")
            if result.status in ("succeeded", "partial"):
                _notify(result, settings, deadline)
        return result
    finally:
        lock.release()


def _orders_run(run_id: int, settings: MarketplaceSettings, api: spapi.OrdersApi, stream: str) -> RunResult:
    state = repository.read_state(stream)
    window_s = state.window_s or settings.sync_max_window_s
    window = None
    if not settings.sandbox:
        window = next_window(
            watermark=state.watermark,
            now=utcnow(),
            overlap_s=settings.sync_overlap_s,
            lag_s=settings.sync_lag_s,
            initial_lookback_s=settings.sync_initial_lookback_s,
            window_s=window_s,
        )
    bounds = {"window_start": window.start if window else None, "window_end": window.end if window else None}
    try:
        fetched = _fetch(settings, api, window)
    except DeadlineReached as exc:
        smaller = max(MIN_WINDOW_S, window_s // 2)
        repository.set_window(stream, smaller)
        error = f"deadline reached while listing orders: {exc}; nothing written, next window {smaller} s"
        repository.close_run(run_id, status="deferred", finished_at=utcnow(), error=error, **bounds)
        metric("SyncDeferred")
        return RunResult(run_id=run_id, status="deferred", error=error)
    except Exception as exc:
        _failed(run_id, exc, **bounds)
        raise
    try:
        return _write(run_id, settings, api, stream, state.watermark, window, window_s, fetched, bounds)
    except Exception as exc:
        _failed(run_id, exc, **bounds)
        raise


def _reason(exc: BaseException) -> str:
    """One line for the run log: the domain detail, or the driver's message (never SQL/params)."""
    if isinstance(exc, OpsdeckError):
        return exc.detail[:500]
    if hasattr(exc, "orig"):
        return f"database error: {db.first_line(exc)}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def _failed(run_id: int, exc: BaseException, **fields: Any) -> None:
    """Record a failed run (its own transaction: the run's one rolled back)."""
    metric("SyncFailed")
    if isinstance(exc, OpsdeckError):
        exc.extra["run_id"] = run_id
    try:
        repository.close_run(run_id, status="failed", finished_at=utcnow(), error=_reason(exc), **fields)
    except Exception:
        logger.exception("could not record the failed run", extra={"run_id": run_id})


def _fetch(settings: MarketplaceSettings, api: spapi.OrdersApi, window: Window | None) -> _Fetched:
    """Steps 2 and 3: every page, then the items that are due. Writes nothing."""
    listed: list[Order] = []
    pages = 0
    if settings.sandbox:
        source = api.sandbox_pages(settings.spapi_sandbox_test_case)
    elif window is None or window.empty:
        source = iter(())
    else:
        source = api.pages(window)
    for page in source:
        pages += 1
        listed.extend(page.orders)
    orders = latest_by_id(listed)
    if api.embeds_items:
        items = {o.amazon_order_id: o.items or () for o in orders}
        return _Fetched(
            orders, items, {o.amazon_order_id: o.order_status for o in orders}, pages, True, 0, None
        )
    by_id = {o.amazon_order_id: o for o in orders}
    if settings.sandbox:
        # The static sandbox answers getOrderItems only for its test case; the payload names the order.
        due = [settings.spapi_sandbox_test_case] if orders else []
    else:
        stored = repository.order_states(list(by_id))
        due = [
            o.amazon_order_id
            for o in orders
            if (s := stored.get(o.amazon_order_id)) is None or s.items_synced_status != o.order_status
        ]
    items: dict[str, tuple[OrderItem, ...]] = {}
    statuses: dict[str, str] = {}
    errors, first_error, complete = 0, None, True
    for order_id in due:
        try:
            named, found = api.items(order_id)
        except DeadlineReached:
            complete = False
            break
        except spapi.SpApiError as exc:
            if not exc.about_the_request:
                raise
            errors += 1
            first_error = first_error or f"{order_id}: {exc.detail}"
            continue
        if named in by_id:
            items[named] = found
            statuses[named] = by_id[named].order_status
    return _Fetched(orders, items, statuses, pages, complete, errors, first_error)


def _write(
    run_id: int,
    settings: MarketplaceSettings,
    api: spapi.OrdersApi,
    stream: str,
    watermark: datetime | None,
    window: Window | None,
    window_s: int,
    fetched: _Fetched,
    bounds: dict[str, Any],
) -> RunResult:
    """Step 4: everything in one transaction."""
    now = utcnow()
    by_id = {o.amazon_order_id: o for o in fetched.orders}
    all_items = [item for found in fetched.items.values() for item in found]
    status = "succeeded" if fetched.complete else "partial"
    error = fetched.error
    if not fetched.complete:
        missing = sum(1 for o in fetched.orders if o.amazon_order_id not in fetched.items)
        error = f"deadline reached while fetching items; committed what was complete, {missing} orders wait"
    new_watermark = watermark
    with db.transaction() as conn:
        written = repository.upsert_orders(
            conn, fetched.orders, run_id=run_id, api_version=api.version, now=now
        )
        repository.upsert_items(conn, all_items, now=now)
        repository.mark_items_synced(conn, fetched.items_status, now=now)
        repository.enqueue_notifications(
            conn,
            [slack.notification_payload(by_id[i]) for i in written.new_ids],
            kind=slack.NEW_ORDER,
            run_id=run_id,
        )
        if fetched.complete and window is not None and not window.empty:
            moved = repository.advance_state(
                conn,
                stream,
                expected=watermark,
                watermark=window.end,
                window_s=min(settings.sync_max_window_s, window_s * 2),
                run_id=run_id,
                now=now,
            )
            if not moved:
                raise Conflict("another run moved the watermark meanwhile (lost run lock); nothing written")
            new_watermark = window.end
        repository.update_run(
            conn,
            run_id,
            status=status,
            finished_at=utcnow(),
            pages=fetched.pages,
            fetched=len(fetched.orders),
            upserted=written.written,
            new=len(written.new_ids),
            items_fetched=len(all_items),
            errors=fetched.errors,
            error=error,
            watermark=new_watermark,
            **bounds,
        )
    metric("OrdersFetched", len(fetched.orders))
    metric("OrdersNew", len(written.new_ids))
    logger.info(
        "orders sync",
        extra={
            "run_id": run_id,
            "status": status,
            "fetched": len(fetched.orders),
            "new": len(written.new_ids),
        },
    )
    return RunResult(
        run_id=run_id,
        status=status,
        fetched=len(fetched.orders),
        upserted=written.written,
        new=len(written.new_ids),
        items_fetched=len(all_items),
        errors=fetched.errors,
        error=error,
        watermark=new_watermark.isoformat() if new_watermark else None,
        pages=fetched.pages,
    )


def _notify(result: RunResult, settings: MarketplaceSettings, deadline: Deadline) -> None:
    """Step 5: deliver the outbox; whatever happens, the sync's result stands."""
    try:
        report = slack.deliver_pending(settings, deadline)
    except Exception as exc:
        logger.exception("notification pass failed")
        report = slack.DeliveryReport(error=f"notification pass failed: {type(exc).__name__}")
    result.notified = report.delivered
    result.pending_notifications = report.pending
    result.notify_error = report.error
    try:
        repository.close_run(result.run_id, notified=report.delivered, notify_error=report.error)
    except Exception:
        logger.exception("could not record the notification pass")


def request_background_run(reason: str) -> bool:
    """Ask the scheduled function to run now (asynchronous Lambda invoke), if it is wired."""
    name = os.environ.get(function_name_env(ORDERS_FUNCTION))
    if not name:
        return False
    try:
        from opsdeck import aws

        aws.client("lambda").invoke(
            FunctionName=name, InvocationType="Event", Payload=json.dumps({"trigger": reason}).encode()
        )
    except Exception as exc:
        logger.warning("could not start a background sync", extra={"error": type(exc).__name__})
        return False
    return True


# --------------------------------------------------------------------- inventory


def run_inventory_sync(
    *, trigger: str, deadline: Deadline, settings: MarketplaceSettings | None = None
) -> RunResult:
    """FBA inventory summaries changed since the watermark (all of them the first time)."""
    settings = settings or load()
    creds = _credentials_or_fail(settings, INVENTORY, trigger)
    stream = f"{INVENTORY}:{settings.spapi_marketplace_id}"
    lock = RunLock(stream, _lock_ttl(deadline))
    if not lock.acquire():
        return RunResult(run_id=lock.holder(), status="running")
    try:
        started = utcnow()
        run_id = repository.start_run(INVENTORY, trigger, api_version="v1", now=started)
        lock.attach(run_id)
        repository.abandon_stale_runs(INVENTORY, current=run_id, now=started)
        with deadline_scope(deadline):
            return _inventory_run(run_id, settings, creds, stream, started)
    finally:
        lock.release()


def _inventory_run(
    run_id: int, settings: MarketplaceSettings, creds: LwaCredentials, stream: str, started: datetime
) -> RunResult:
    state = repository.read_state(stream)
    since = state.watermark - timedelta(seconds=settings.inventory_overlap_s) if state.watermark else None
    pages = 0
    collected: dict[str, InventorySummary] = {}
    try:
        for page in spapi.inventory_api(settings, creds).pages(iso(since) if since else None):
            pages += 1
            for summary in page:
                collected[summary.seller_sku] = summary
    except DeadlineReached as exc:
        error = f"deadline reached while listing inventory: {exc}; nothing written"
        repository.close_run(run_id, status="deferred", finished_at=utcnow(), error=error, pages=pages)
        return RunResult(run_id=run_id, status="deferred", error=error, pages=pages)
    except Exception as exc:
        _failed(run_id, exc, pages=pages)
        raise
    summaries = list(collected.values())
    try:
        with db.transaction() as conn:
            written = repository.upsert_inventory(conn, summaries, now=utcnow())
            moved = repository.advance_state(
                conn,
                stream,
                expected=state.watermark,
                watermark=started,
                window_s=None,
                run_id=run_id,
                now=started,
            )
            if not moved:
                raise Conflict("another run moved the inventory watermark meanwhile; nothing written")
            repository.update_run(
                conn,
                run_id,
                status="succeeded",
                finished_at=utcnow(),
                pages=pages,
                fetched=len(summaries),
                upserted=written,
                window_start=since,
                window_end=started,
                watermark=started,
            )
    except Exception as exc:
        _failed(run_id, exc, pages=pages)
        raise
    metric("InventoryFetched", len(summaries))
    return RunResult(
        run_id=run_id,
        status="succeeded",
        fetched=len(summaries),
        upserted=written,
        pages=pages,
        watermark=started.isoformat(),
    )
