"""backoffice: the read store fed from OLTP change events (schema ``bo``), and the admin audit log.

* ``ledger_entries`` / ``payment_orders``: the last-writer-wins image of each OLTP row, with its
  ordering key ``(lww_rank, lww_major, lww_minor, lww_tomb)`` (see ``functions/backoffice/changes.py``)
  and ``deleted_at`` for tombstones (kept so that a late, older update cannot resurrect a row).
* ``payment_ledger_pairs``: the PAYMENT/RECEIVE legs sharing a ``related_id`` (the payment order),
  recomputed from the live entries whenever one of them changes.
* ``sync_state``: per source table, the newest commit time applied (``data_lag_sec``).
* ``admin_audit``: one row per admin request, allowed or denied.
* ``admin_entries`` / ``admin_tx_search`` (views): what the admin API reads, timestamps already
  rendered as UTC ISO 8601 text by ``bo.utc_text`` (the driver then parses no timestamps, and
  the hot ``GET /admin/tx`` statement is one short ``SELECT … WHERE tx_id = $1``).

Revision ID: backoffice_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "backoffice_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("backoffice",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _lww_columns() -> list[sa.Column]:
    return [
        sa.Column("source_ts", TS),
        sa.Column("source_lsn", sa.BigInteger),
        sa.Column("lww_rank", sa.SmallInteger, nullable=False),
        sa.Column("lww_major", sa.BigInteger, nullable=False),
        sa.Column("lww_minor", sa.BigInteger, nullable=False),
        sa.Column("lww_tomb", sa.SmallInteger, nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
    ]


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS bo")
    op.create_table(
        "ledger_entries",
        sa.Column("tx_id", sa.Text, primary_key=True),
        sa.Column("wallet_id", sa.Text),
        sa.Column("type", sa.Text),
        sa.Column("amount", sa.BigInteger),
        sa.Column("currency", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("related_id", sa.Text),
        sa.Column("related_type", sa.Text),
        sa.Column("created_at", TS),
        sa.Column("updated_at", TS),
        sa.Column("version", sa.BigInteger),
        *_lww_columns(),
        schema="bo",
    )
    # pairing: the legs of one payment order
    op.create_index(
        "ledger_entries_related_id",
        "ledger_entries",
        ["related_id"],
        schema="bo",
        postgresql_where=sa.text("related_id IS NOT NULL"),
    )
    # GET /admin/wallets/{wallet_id}/tx: newest first, keyset pagination on (created_at, tx_id)
    op.create_index(
        "ledger_entries_wallet_recent",
        "ledger_entries",
        ["wallet_id", sa.text("created_at DESC"), sa.text("tx_id DESC")],
        schema="bo",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "payment_orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text),
        sa.Column("amount", sa.BigInteger),
        sa.Column("currency", sa.Text),
        sa.Column("payer_wallet_id", sa.Text),
        sa.Column("payee_wallet_id", sa.Text),
        sa.Column("created_at", TS),
        sa.Column("updated_at", TS),
        sa.Column("version", sa.BigInteger),
        *_lww_columns(),
        schema="bo",
    )
    op.create_table(
        "payment_ledger_pairs",
        sa.Column("payment_order_id", sa.Text, primary_key=True),
        sa.Column("payment_tx_id", sa.Text),
        sa.Column("receive_tx_id", sa.Text),
        sa.Column("payment_legs", sa.SmallInteger, nullable=False),
        sa.Column("receive_legs", sa.SmallInteger, nullable=False),
        sa.Column("pairing_status", sa.Text, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "pairing_status IN ('COMPLETE', 'INCOMPLETE', 'UNKNOWN')", name="pairing_status_known"
        ),
        schema="bo",
    )
    # the "oldest incomplete pair" gauge reads the first row of this index
    op.create_index(
        "payment_ledger_pairs_incomplete_age",
        "payment_ledger_pairs",
        ["first_seen_at"],
        schema="bo",
        postgresql_where=sa.text("pairing_status = 'INCOMPLETE'"),
    )
    op.create_table(
        "sync_state",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("last_source_ts", TS),
        sa.Column("last_applied_at", TS, nullable=False),
        schema="bo",
    )
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("request_id", sa.Text),
        sa.Column("actor", sa.Text),
        sa.Column("actor_roles", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target_type", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("result_count", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("ip", sa.Text),
        sa.Column("user_agent", sa.Text),
        schema="bo",
    )
    op.create_index("admin_audit_at", "admin_audit", ["at"], schema="bo")
    op.create_index("admin_audit_actor", "admin_audit", ["actor", "id"], schema="bo")
    op.create_index("admin_audit_target", "admin_audit", ["target_type", "target_id", "id"], schema="bo")

    op.execute(
        """
        CREATE FUNCTION bo.utc_text(ts timestamptz) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$
        """
    )
    op.execute(
        f"""
        CREATE VIEW bo.admin_entries AS
        SELECT {_columns("e", "")},
               (extract(epoch FROM e.created_at) * 1000000)::bigint AS created_us,
               e.created_at AS created_ts, e.deleted_at
        FROM bo.ledger_entries e
        """
    )
    op.execute(
        f"""
        CREATE VIEW bo.admin_tx_search AS
        SELECT {_columns("e", "")}, bo.utc_text(e.deleted_at) AS deleted_at,
               p.pairing_status,
               {_columns("q", "q_")},
               {_columns("o", "o_", ORDER_PLAIN)},
               bo.utc_text(w.watermark) AS as_of,
               round(greatest(0, extract(epoch FROM now() - w.watermark))::numeric, 3)::float8 AS data_lag_sec
        FROM bo.ledger_entries e
        LEFT JOIN bo.payment_ledger_pairs p ON p.payment_order_id = e.related_id
        LEFT JOIN bo.ledger_entries q
               ON q.tx_id = CASE WHEN p.payment_tx_id = e.tx_id THEN p.receive_tx_id
                                 WHEN p.receive_tx_id = e.tx_id THEN p.payment_tx_id END
              AND q.deleted_at IS NULL
        LEFT JOIN bo.payment_orders o ON o.order_id = e.related_id AND o.deleted_at IS NULL
        CROSS JOIN (SELECT min(last_source_ts) AS watermark FROM bo.sync_state) AS w
        """
    )
    # The hot lookup as a PL/pgSQL function: its query plan is prepared once per connection
    # and reused (a plain statement on the view is re-planned on every call: ~2x the time).
    op.execute(
        """
        CREATE FUNCTION bo.admin_tx(p_tx_id text) RETURNS SETOF bo.admin_tx_search
        LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN QUERY SELECT * FROM bo.admin_tx_search WHERE tx_id = p_tx_id;
        END
        $$
        """
    )


ENTRY_PLAIN = (
    "tx_id",
    "wallet_id",
    "type",
    "amount",
    "currency",
    "status",
    "related_id",
    "related_type",
    "version",
)
ORDER_PLAIN = ("order_id", "status", "amount", "currency", "payer_wallet_id", "payee_wallet_id", "version")
TIMES = ("created_at", "updated_at", "synced_at")


def _columns(alias: str, prefix: str, plain: tuple[str, ...] = ENTRY_PLAIN) -> str:
    """``alias.col AS <prefix>col`` for plain columns, ``bo.utc_text(alias.col)`` for timestamps."""
    return ", ".join(
        [f"{alias}.{c} AS {prefix}{c}" for c in plain]
        + [f"bo.utc_text({alias}.{c}) AS {prefix}{c}" for c in TIMES]
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bo.admin_tx(text)")
    op.execute("DROP VIEW IF EXISTS bo.admin_tx_search")
    op.execute("DROP VIEW IF EXISTS bo.admin_entries")
    op.execute("DROP FUNCTION IF EXISTS bo.utc_text(timestamptz)")
    for table in ("admin_audit", "sync_state", "payment_ledger_pairs", "payment_orders", "ledger_entries"):
        op.drop_table(table, schema="bo")
    op.execute("DROP SCHEMA IF EXISTS bo")
