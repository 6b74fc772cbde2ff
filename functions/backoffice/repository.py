"""Admin API reads and the audit log, as SQL over schema ``bo``.

The HTTP handler loads this module lazily (``opsdeck.lazy.lazy_import``): SQLAlchemy is paid
for on the first request that reaches the database, not at cold start.

``GET /admin/tx/{tx_id}`` is ONE short statement, ``bo.admin_tx(tx_id)`` (a PL/pgSQL function over the
view ``bo.admin_tx_search``, so its plan is cached per connection): the entry
by primary key, its pair row (primary key), the paired entry (primary key), the payment order
(primary key) and the sync watermark (two-row table) — five index lookups, one round trip.
Wallet pages use the partial index ``(wallet_id, created_at DESC, tx_id DESC) WHERE deleted_at
IS NULL`` as a keyset. Timestamps come back as UTC ISO 8601 text (``bo.utc_text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from opsdeck import db

ENTRY = (
    "tx_id",
    "wallet_id",
    "type",
    "amount",
    "currency",
    "status",
    "related_id",
    "related_type",
    "version",
    "created_at",
    "updated_at",
    "synced_at",
)
ORDER = (
    "order_id",
    "status",
    "amount",
    "currency",
    "payer_wallet_id",
    "payee_wallet_id",
    "version",
    "created_at",
    "updated_at",
    "synced_at",
)
_ENTRY_COLUMNS = ", ".join("e." + c for c in ENTRY)
_WATERMARK = (
    "(SELECT bo.utc_text(min(last_source_ts)) AS as_of, "
    "round(greatest(0, extract(epoch FROM now() - min(last_source_ts)))::numeric, 3)::float8 AS data_lag_sec "
    "FROM bo.sync_state)"
)

# Views of the migration render timestamps as UTC text (no timestamp parsing in the driver) and
# keep the statements short (the driver rewrites parameters character by character).
# one JSON value rather than 39 columns: the driver describes and converts one column, and
# json.loads (C) builds the mapping (~0.2 ms less per request than 39 described columns)
TX_LOOKUP = text("SELECT row_to_json(t) FROM bo.admin_tx(:tx_id) AS t")  # bo.admin_tx_search, plan cached

ORDER_LOOKUP = text(
    f"""
    SELECT {", ".join(f"o.{c} AS o_{c}" for c in ORDER[:7])},
           {", ".join(f"bo.utc_text(o.{c}) AS o_{c}" for c in ORDER[7:])},
           o.deleted_at IS NOT NULL AS o_deleted,
           p.pairing_status, p.payment_tx_id, p.receive_tx_id,
           bo.utc_text(p.first_seen_at) AS first_seen_at, bo.utc_text(p.completed_at) AS completed_at,
           w.as_of, w.data_lag_sec
    FROM (SELECT CAST(:order_id AS text) AS id) AS k
    LEFT JOIN bo.payment_orders o ON o.order_id = k.id
    LEFT JOIN bo.payment_ledger_pairs p ON p.payment_order_id = k.id
    CROSS JOIN {_WATERMARK} AS w
    """
)

ORDER_ENTRIES = text(
    f"""
    SELECT {_ENTRY_COLUMNS} FROM bo.admin_entries e
    WHERE e.related_id = :order_id AND e.deleted_at IS NULL
    ORDER BY e.created_ts, e.tx_id
    LIMIT 1000
    """
)

_WALLET_SELECT = f"""
    SELECT {_ENTRY_COLUMNS}, e.created_us,
           EXISTS (SELECT 1 FROM bo.payment_orders o
                   WHERE o.order_id = e.related_id AND o.deleted_at IS NULL) AS order_known
    FROM bo.admin_entries e
    WHERE e.wallet_id = :wallet_id AND e.deleted_at IS NULL {{after}}
    ORDER BY e.created_ts DESC, e.tx_id DESC
    LIMIT :limit
"""
WALLET_FIRST_PAGE = text(_WALLET_SELECT.format(after=""))
# a separate statement, so the keyset condition is an index condition in every plan
WALLET_NEXT_PAGE = text(
    _WALLET_SELECT.format(after="AND (e.created_ts, e.tx_id) < (:after_created, CAST(:after_tx AS text))")
)
WATERMARK = text(f"SELECT * FROM {_WATERMARK} AS w")

AUDIT_COLUMNS = (
    "request_id",
    "actor",
    "actor_roles",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "status",
    "result_count",
    "reason",
    "ip",
    "user_agent",
)
INSERT_AUDIT = text(
    f"INSERT INTO bo.admin_audit ({', '.join(AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in AUDIT_COLUMNS)})"
)


# ---------------------------------------------------------------------- lookups


def tx(conn: Connection, tx_id: str) -> Mapping[str, Any] | None:
    """The joined row of ``tx_id`` (live or tombstone), or None."""
    return conn.execute(TX_LOOKUP, {"tx_id": tx_id}).scalar()


def payment_order(
    conn: Connection, order_id: str
) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]], Mapping[str, Any] | None, Mapping[str, Any]]:
    """(order or None, live entries, pair or None, freshness ``{as_of, data_lag_sec}``)."""
    head = conn.execute(ORDER_LOOKUP, {"order_id": order_id}).mappings().one()
    order = None
    if head["o_order_id"] is not None and not head["o_deleted"]:
        order = {k.removeprefix("o_"): v for k, v in head.items() if k.startswith("o_")}
    pair = head if head["pairing_status"] is not None else None
    entries = list(conn.execute(ORDER_ENTRIES, {"order_id": order_id}).mappings())
    return order, entries, pair, head


def wallet_page(
    conn: Connection, wallet_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[Mapping[str, Any]]:
    """Up to ``limit`` live entries of the wallet, newest first, strictly after ``after``
    (``(created_at, tx_id)`` of the last row of the previous page)."""
    params: dict[str, Any] = {"wallet_id": wallet_id, "limit": limit}
    if after is None:
        return list(conn.execute(WALLET_FIRST_PAGE, params).mappings())
    params["after_created"], params["after_tx"] = after
    return list(conn.execute(WALLET_NEXT_PAGE, params).mappings())


def freshness(conn: Connection) -> Mapping[str, Any]:
    """``{as_of, data_lag_sec}`` of the store (both None before anything was synced)."""
    return conn.execute(WATERMARK).mappings().one()


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: str | None = None


def audit_page(
    conn: Connection, f: AuditFilter, limit: int, before_id: int | None
) -> list[Mapping[str, Any]]:
    """Audit records matching ``f``, newest first (by id), with id < ``before_id``."""
    clauses, params = [], {"limit": limit}
    for column, value in (
        ("actor", f.actor),
        ("target_type", f.target_type),
        ("target_id", f.target_id),
        ("outcome", f.outcome),
    ):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if f.since is not None:
        clauses.append("at >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("at < :until")
        params["until"] = f.until
    if before_id is not None:
        clauses.append("id < :before_id")
        params["before_id"] = before_id
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    columns = ", ".join(AUDIT_COLUMNS)
    sql = (
        f"SELECT id, bo.utc_text(at) AS at, {columns} FROM bo.admin_audit {where} "
        "ORDER BY id DESC LIMIT :limit"
    )
    return list(conn.execute(text(sql), params).mappings())


# -------------------------------------------------------------------- audit log


def insert_audit(conn: Connection, record: Mapping[str, Any]) -> None:
    conn.execute(INSERT_AUDIT, {c: record.get(c) for c in AUDIT_COLUMNS})


def write_audit(record: Mapping[str, Any]) -> None:
    """The audit record in a transaction of its own (requests denied before any lookup)."""
    with db.transaction() as conn:
        insert_audit(conn, record)
