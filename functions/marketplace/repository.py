"""PostgreSQL access of the marketplace capability (schema ``marketplace``).

Writes are bulk: orders, items, inventory and outbox rows go through
``opsdeck.db.bulk_upsert`` (one ``INSERT … SELECT FROM unnest … ON CONFLICT`` per batch);
multi-row updates are one ``UPDATE … FROM unnest``. Nothing here loops over rows with a
statement each. ``orders`` upserts carry the version guard ``last_update_date``, so the
overlap of consecutive windows re-reads orders without rewriting them, and the
``inserted`` flag of the upsert is the one place where an order is found to be new.

Functions taking ``conn`` run inside the caller's transaction (the sync's atomic write);
the others open their own (``opsdeck.db.transaction``). The HTTP handler imports this
module lazily: SQLAlchemy is not loaded at its cold start.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import JSONB

from opsdeck import db

from .domain import InventorySummary, Order, OrderItem

SCHEMA = "marketplace"
metadata = sa.MetaData(schema=SCHEMA)
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 4)
CHUNK = 2000  # rows per bulk statement (raw payloads make rows large)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("amazon_order_id", sa.Text, nullable=False, unique=True),
    sa.Column("marketplace_id", sa.Text),
    sa.Column("order_status", sa.Text, nullable=False),
    sa.Column("purchase_date", TS),
    sa.Column("last_update_date", TS, nullable=False),
    sa.Column("fulfillment_channel", sa.Text),
    sa.Column("sales_channel", sa.Text),
    sa.Column("order_total_amount", MONEY),
    sa.Column("order_total_currency", sa.Text),
    sa.Column("items_shipped", sa.Integer),
    sa.Column("items_unshipped", sa.Integer),
    sa.Column("raw_payload", JSONB, nullable=False),
    sa.Column("api_version", sa.Text, nullable=False),
    sa.Column("first_seen_at", TS),
    sa.Column("synced_at", TS, nullable=False),
    sa.Column("sync_run_id", sa.BigInteger),
    sa.Column("items_synced_status", sa.Text),
    sa.Column("items_synced_at", TS),
)
order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("amazon_order_id", sa.Text, primary_key=True),
    sa.Column("order_item_id", sa.Text, primary_key=True),
    sa.Column("asin", sa.Text),
    sa.Column("seller_sku", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("quantity_ordered", sa.Integer, nullable=False),
    sa.Column("quantity_shipped", sa.Integer),
    sa.Column("item_price_amount", MONEY),
    sa.Column("item_price_currency", sa.Text),
    sa.Column("item_tax_amount", MONEY),
    sa.Column("raw_payload", JSONB, nullable=False),
    sa.Column("synced_at", TS, nullable=False),
)
inventory = sa.Table(
    "inventory",
    metadata,
    sa.Column("marketplace_id", sa.Text, primary_key=True),
    sa.Column("seller_sku", sa.Text, primary_key=True),
    sa.Column("asin", sa.Text),
    sa.Column("fn_sku", sa.Text),
    sa.Column("product_name", sa.Text),
    sa.Column("condition", sa.Text),
    sa.Column("total_quantity", sa.Integer),
    sa.Column("fulfillable_quantity", sa.Integer),
    sa.Column("inbound_working_quantity", sa.Integer),
    sa.Column("inbound_shipped_quantity", sa.Integer),
    sa.Column("inbound_receiving_quantity", sa.Integer),
    sa.Column("reserved_quantity", sa.Integer),
    sa.Column("unfulfillable_quantity", sa.Integer),
    sa.Column("researching_quantity", sa.Integer),
    sa.Column("last_updated_time", TS, nullable=False),
    sa.Column("raw_payload", JSONB, nullable=False),
    sa.Column("synced_at", TS, nullable=False),
)
sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("api_version", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("window_start", TS),
    sa.Column("window_end", TS),
    sa.Column("pages", sa.Integer),
    sa.Column("fetched", sa.Integer),
    sa.Column("upserted", sa.Integer),
    sa.Column("new", sa.Integer),
    sa.Column("items_fetched", sa.Integer),
    sa.Column("notified", sa.Integer),
    sa.Column("errors", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("notify_error", sa.Text),
    sa.Column("watermark", TS),
)
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amazon_order_id", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("created_at", TS),
    sa.Column("batch_key", sa.Text),
    sa.Column("attempts", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("last_attempt_at", TS),
    sa.Column("delivered_at", TS),
    sa.Column("gave_up_at", TS),
)


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# ------------------------------------------------------------------------ orders


@dataclass(frozen=True, slots=True)
class StoredState:
    order_status: str
    items_synced_status: str | None


def order_states(ids: Sequence[str]) -> dict[str, StoredState]:
    """What is stored about these orders (decides which need their items fetched)."""
    if not ids:
        return {}
    with db.transaction() as conn:
        rows = conn.execute(
            text(
                "SELECT amazon_order_id, order_status, items_synced_status FROM marketplace.orders "
                "WHERE amazon_order_id = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": list(ids)},
        )
        return {r.amazon_order_id: StoredState(r.order_status, r.items_synced_status) for r in rows}


def order_row(order: Order, *, run_id: int | None, api_version: str, now: datetime) -> dict[str, Any]:
    return {
        "amazon_order_id": order.amazon_order_id,
        "marketplace_id": order.marketplace_id,
        "order_status": order.order_status,
        "purchase_date": order.purchase_date,
        "last_update_date": order.last_update_date,
        "fulfillment_channel": order.fulfillment_channel,
        "sales_channel": order.sales_channel,
        "order_total_amount": order.order_total_amount,
        "order_total_currency": order.order_total_currency,
        "items_shipped": order.items_shipped,
        "items_unshipped": order.items_unshipped,
        "raw_payload": order.raw,
        "api_version": api_version,
        "synced_at": now,
        "sync_run_id": run_id,
    }


@dataclass(frozen=True, slots=True)
class OrdersWritten:
    written: int
    new_ids: tuple[str, ...]


def upsert_orders(
    conn: Connection, batch: Sequence[Order], *, run_id: int | None, api_version: str, now: datetime
) -> OrdersWritten:
    """Insert new orders, overwrite stored ones only with a newer ``last_update_date``."""
    written = 0
    new_ids: list[str] = []
    rows = [order_row(o, run_id=run_id, api_version=api_version, now=now) for o in batch]
    for chunk in _chunks(rows):
        result = db.bulk_upsert(
            conn,
            orders,
            chunk,
            key=("amazon_order_id",),
            version=("last_update_date",),
            returning=("amazon_order_id",),
        )
        written += result.written
        new_ids.extend(r[1] for r in result.rows if r[0])
    return OrdersWritten(written, tuple(new_ids))


def item_row(item: OrderItem, now: datetime) -> dict[str, Any]:
    return {
        "amazon_order_id": item.amazon_order_id,
        "order_item_id": item.order_item_id,
        "asin": item.asin,
        "seller_sku": item.seller_sku,
        "title": item.title,
        "quantity_ordered": item.quantity_ordered,
        "quantity_shipped": item.quantity_shipped,
        "item_price_amount": item.item_price_amount,
        "item_price_currency": item.item_price_currency,
        "item_tax_amount": item.item_tax_amount,
        "raw_payload": item.raw,
        "synced_at": now,
    }


def upsert_items(conn: Connection, items: Sequence[OrderItem], *, now: datetime) -> int:
    rows = [item_row(i, now) for i in items]
    return sum(
        db.bulk_upsert(conn, order_items, chunk, key=("amazon_order_id", "order_item_id")).written
        for chunk in _chunks(rows)
    )


def mark_items_synced(conn: Connection, statuses: Mapping[str, str], *, now: datetime) -> None:
    """Remember at which status each order's items were fetched (one statement)."""
    if not statuses:
        return
    conn.execute(
        text(
            "UPDATE marketplace.orders AS o SET items_synced_status = u.status, items_synced_at = :now "
            "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS u(id, status) "
            "WHERE o.amazon_order_id = u.id"
        ),
        {"ids": list(statuses), "statuses": list(statuses.values()), "now": now},
    )


def list_orders(
    *,
    statuses: Sequence[str] = (),
    purchased_after: datetime | None = None,
    purchased_before: datetime | None = None,
    after: tuple[datetime | None, int] | None = None,
    limit: int = 50,
) -> list[Any]:
    """Newest purchases first (undated last), keyset-paginated on (purchase_date, id)."""
    o = orders.c
    query = sa.select(
        o.id,
        o.amazon_order_id,
        o.marketplace_id,
        o.order_status,
        o.purchase_date,
        o.last_update_date,
        o.fulfillment_channel,
        o.sales_channel,
        o.order_total_amount,
        o.order_total_currency,
        o.items_shipped,
        o.items_unshipped,
        o.first_seen_at,
        o.synced_at,
    )
    if statuses:
        query = query.where(o.order_status.in_(list(statuses)))
    if purchased_after is not None:
        query = query.where(o.purchase_date >= purchased_after)
    if purchased_before is not None:
        query = query.where(o.purchase_date < purchased_before)
    if after is not None:
        date, last_id = after
        if date is None:
            query = query.where(o.purchase_date.is_(None), o.id < last_id)
        else:
            query = query.where(
                sa.or_(
                    o.purchase_date < date,
                    sa.and_(o.purchase_date == date, o.id < last_id),
                    o.purchase_date.is_(None),
                )
            )
    query = query.order_by(o.purchase_date.desc().nulls_last(), o.id.desc()).limit(limit)
    with db.transaction() as conn:
        return list(conn.execute(query))


def get_order(amazon_order_id: str) -> tuple[Any, list[Any]] | None:
    with db.transaction() as conn:
        row = conn.execute(sa.select(orders).where(orders.c.amazon_order_id == amazon_order_id)).one_or_none()
        if row is None:
            return None
        items = list(
            conn.execute(
                sa.select(order_items)
                .where(order_items.c.amazon_order_id == amazon_order_id)
                .order_by(order_items.c.order_item_id)
            )
        )
        return row, items


# --------------------------------------------------------------------- inventory


def inventory_row(summary: InventorySummary, now: datetime) -> dict[str, Any]:
    return {
        "marketplace_id": summary.marketplace_id,
        "seller_sku": summary.seller_sku,
        "asin": summary.asin,
        "fn_sku": summary.fn_sku,
        "product_name": summary.product_name,
        "condition": summary.condition,
        "total_quantity": summary.total_quantity,
        "fulfillable_quantity": summary.fulfillable_quantity,
        "inbound_working_quantity": summary.inbound_working_quantity,
        "inbound_shipped_quantity": summary.inbound_shipped_quantity,
        "inbound_receiving_quantity": summary.inbound_receiving_quantity,
        "reserved_quantity": summary.reserved_quantity,
        "unfulfillable_quantity": summary.unfulfillable_quantity,
        "researching_quantity": summary.researching_quantity,
        "last_updated_time": summary.last_updated_time,
        "raw_payload": summary.raw,
        "synced_at": now,
    }


def upsert_inventory(conn: Connection, summaries: Sequence[InventorySummary], *, now: datetime) -> int:
    """Newest ``lastUpdatedTime`` wins; an equal one refreshes the row (a full listing is truth)."""
    rows = [inventory_row(s, now) for s in summaries]
    written = 0
    for chunk in _chunks(rows):
        written += db.bulk_upsert(
            conn,
            inventory,
            chunk,
            key=("marketplace_id", "seller_sku"),
            version=("last_updated_time", "synced_at"),
        ).written
    return written


def list_inventory(
    *,
    marketplace_id: str | None = None,
    seller_sku: str | None = None,
    asin: str | None = None,
    after_sku: str | None = None,
    limit: int = 100,
) -> list[Any]:
    i = inventory.c
    query = sa.select(inventory).where(
        *(() if marketplace_id is None else (i.marketplace_id == marketplace_id,))
    )
    if seller_sku:
        query = query.where(i.seller_sku == seller_sku)
    if asin:
        query = query.where(i.asin == asin)
    if after_sku is not None:
        query = query.where(i.seller_sku > after_sku)
    query = query.order_by(i.seller_sku, i.marketplace_id).limit(limit)
    with db.transaction() as conn:
        return list(conn.execute(query))


# -------------------------------------------------------------------- sync runs


def start_run(kind: str, trigger: str, *, api_version: str | None, now: datetime) -> int:
    """A ``running`` record, committed at once (``/logs`` shows runs in flight)."""
    with db.transaction() as conn:
        return int(
            conn.execute(
                sa.insert(sync_runs)
                .values(kind=kind, trigger=trigger, status="running", api_version=api_version, started_at=now)
                .returning(sync_runs.c.id)
            ).scalar_one()
        )


def update_run(conn: Connection, run_id: int, **fields: Any) -> None:
    conn.execute(sa.update(sync_runs).where(sync_runs.c.id == run_id).values(**fields))


def close_run(run_id: int, **fields: Any) -> None:
    """Record the end of a run in its own transaction (after the run's own one rolled back)."""
    with db.transaction() as conn:
        update_run(conn, run_id, **fields)


ABANDONED = "abandoned: the run ended without recording a result"


def abandon_stale_runs(kind: str, *, current: int, now: datetime) -> int:
    """Runs still ``running`` while we hold the run lock died without a word (timeout, crash)."""
    with db.transaction() as conn:
        return conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.kind == kind, sync_runs.c.status == "running", sync_runs.c.id != current)
            .values(
                status="failed", finished_at=now, error="abandoned: the run ended without recording a result"
            )
        ).rowcount


def list_runs(
    *, kind: str | None = None, status: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[Any]:
    r = sync_runs.c
    query = sa.select(sync_runs)
    if kind:
        query = query.where(r.kind == kind)
    if status:
        query = query.where(r.status == status)
    if before_id is not None:
        query = query.where(r.id < before_id)
    with db.transaction() as conn:
        return list(conn.execute(query.order_by(r.id.desc()).limit(limit)))


def get_run(run_id: int) -> Any | None:
    with db.transaction() as conn:
        return conn.execute(sa.select(sync_runs).where(sync_runs.c.id == run_id)).one_or_none()


def last_successes() -> dict[str, datetime]:
    """Finish time of the newest successful run per kind."""
    with db.transaction() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, max(finished_at) AS at FROM marketplace.sync_runs "
                "WHERE status = 'succeeded' GROUP BY kind"
            )
        )
        return {r.kind: r.at for r in rows}


# -------------------------------------------------------------------- sync state


@dataclass(frozen=True, slots=True)
class StreamState:
    watermark: datetime | None
    window_s: int | None


def read_state(stream: str) -> StreamState:
    with db.transaction() as conn:
        row = conn.execute(
            text("SELECT watermark, window_s FROM marketplace.sync_state WHERE stream = :s"), {"s": stream}
        ).one_or_none()
    return StreamState(None, None) if row is None else StreamState(row.watermark, row.window_s)


def advance_state(
    conn: Connection,
    stream: str,
    *,
    expected: datetime | None,
    watermark: datetime | None,
    window_s: int | None,
    run_id: int,
    now: datetime,
) -> bool:
    """Move the watermark iff it is still ``expected`` (compare-and-set: a run that lost its
    lock can never move it backwards or skip another run's window)."""
    result = conn.execute(
        text(
            "INSERT INTO marketplace.sync_state AS s "
            "(stream, watermark, window_s, last_success_at, last_run_id) "
            "VALUES (:stream, :watermark, :window_s, :now, :run_id) "
            "ON CONFLICT (stream) DO UPDATE SET watermark = EXCLUDED.watermark, "
            "window_s = EXCLUDED.window_s, last_success_at = EXCLUDED.last_success_at, "
            "last_run_id = EXCLUDED.last_run_id "
            "WHERE s.watermark IS NOT DISTINCT FROM CAST(:expected AS timestamptz)"
        ),
        {
            "stream": stream,
            "watermark": watermark,
            "window_s": window_s,
            "now": now,
            "run_id": run_id,
            "expected": expected,
        },
    )
    return result.rowcount == 1


def set_window(stream: str, window_s: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO marketplace.sync_state (stream, window_s) VALUES (:s, :w) "
                "ON CONFLICT (stream) DO UPDATE SET window_s = EXCLUDED.window_s"
            ),
            {"s": stream, "w": window_s},
        )


# ----------------------------------------------------------------------- outbox


def enqueue_notifications(
    conn: Connection, payloads: Sequence[Mapping[str, Any]], *, kind: str, run_id: int | None
) -> int:
    """Outbox rows for new orders, in the caller's transaction; at most one per (kind, order)."""
    rows = [
        {"kind": kind, "amazon_order_id": p["amazon_order_id"], "payload": dict(p), "run_id": run_id}
        for p in payloads
    ]
    return sum(
        db.bulk_upsert(conn, notifications, chunk, key=("kind", "amazon_order_id"), do_nothing=True).inserted
        for chunk in _chunks(rows)
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """One Slack message: a single notification or a digest of several."""

    key: str
    ids: tuple[int, ...]
    payloads: tuple[Mapping[str, Any], ...]
    attempts: int


def plan_batches(*, digest_threshold: int, max_digest: int = 5000) -> int:
    """Give every unplanned pending notification a batch key, committed *before* sending.

    More than ``digest_threshold`` at once → digests of up to ``max_digest``; else one
    message each. A batch keeps its key until delivered, so a retry resends exactly the
    same message under the same idempotency key. Returns how many rows were planned.
    """
    with db.transaction() as conn:
        ids = list(
            conn.execute(
                text(
                    "SELECT id FROM marketplace.notifications "
                    "WHERE delivered_at IS NULL AND gave_up_at IS NULL AND batch_key IS NULL "
                    "ORDER BY id FOR UPDATE SKIP LOCKED"
                )
            ).scalars()
        )
        if not ids:
            return 0
        if len(ids) > digest_threshold:
            keys = [f"digest-{uuid.uuid4().hex}" for _ in range(0, len(ids), max_digest)]
            assigned = [keys[i // max_digest] for i in range(len(ids))]
        else:
            assigned = [f"order-{uuid.uuid4().hex}" for _ in ids]
        conn.execute(
            text(
                "UPDATE marketplace.notifications AS n SET batch_key = u.key "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS text[])) AS u(id, key) WHERE n.id = u.id"
            ),
            {"ids": ids, "keys": assigned},
        )
        return len(ids)


def pending_batches() -> list[Batch]:
    """Planned, undelivered batches, oldest first."""
    with db.transaction() as conn:
        rows = conn.execute(
            text(
                "SELECT id, batch_key, payload, attempts FROM marketplace.notifications "
                "WHERE delivered_at IS NULL AND gave_up_at IS NULL AND batch_key IS NOT NULL ORDER BY id"
            )
        ).all()
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.batch_key, []).append(row)
    return [
        Batch(
            key=key,
            ids=tuple(r.id for r in members),
            payloads=tuple(r.payload for r in members),
            attempts=max(r.attempts for r in members),
        )
        for key, members in grouped.items()
    ]


def mark_delivered(batch_key: str, *, now: datetime) -> int:
    with db.transaction() as conn:
        return conn.execute(
            text(
                "UPDATE marketplace.notifications SET delivered_at = :now, last_attempt_at = :now, "
                "attempts = attempts + 1, last_error = NULL WHERE batch_key = :key AND delivered_at IS NULL"
            ),
            {"key": batch_key, "now": now},
        ).rowcount


def record_failure(batch_key: str, *, error: str, give_up: bool, now: datetime) -> None:
    with db.transaction() as conn:
        conn.execute(
            text(
                "UPDATE marketplace.notifications SET attempts = attempts + 1, last_error = :error, "
                "last_attempt_at = :now, "
                "gave_up_at = CASE WHEN CAST(:give_up AS boolean) THEN CAST(:now AS timestamptz) END "
                "WHERE batch_key = :key AND delivered_at IS NULL"
            ),
            {"key": batch_key, "error": error[:500], "give_up": give_up, "now": now},
        )


def outbox_counts() -> dict[str, int]:
    with db.transaction() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND gave_up_at IS NULL) AS pending, "
                "count(*) FILTER (WHERE gave_up_at IS NOT NULL) AS given_up "
                "FROM marketplace.notifications"
            )
        ).one()
    return {"pending": row.pending, "given_up": row.given_up}
