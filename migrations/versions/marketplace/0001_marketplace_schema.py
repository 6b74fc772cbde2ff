"""marketplace: Amazon orders, order items, FBA inventory, sync runs, sync state, Slack outbox.

* ``orders`` is keyed by ``amazon_order_id``; ``last_update_date`` is the upsert version
  (a re-fetched order with the same version is skipped, a newer one overwrites).
  ``items_synced_status`` remembers the status at which the items were last fetched, so a
  status change (Pending → Unshipped brings prices) fetches them again.
* ``sync_runs`` is the run log behind ``GET /marketplace/logs``; ``sync_state`` holds one
  watermark per stream (``orders:<marketplace>``, ``inventory:<marketplace>``).
* ``notifications`` is the transactional outbox of Slack messages: written in the same
  transaction as the orders it announces, unique per (kind, order), delivered after commit.

Revision ID: marketplace_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "marketplace_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("marketplace",)
depends_on: str | Sequence[str] | None = None

S = "marketplace"
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 4)


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {S}")
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
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
        sa.Column("raw_payload", postgresql.JSONB, nullable=False),
        sa.Column("api_version", sa.Text, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("synced_at", TS, nullable=False),
        sa.Column("sync_run_id", sa.BigInteger),
        sa.Column("items_synced_status", sa.Text),
        sa.Column("items_synced_at", TS),
        schema=S,
    )
    op.create_index(
        "orders_by_purchase_date",
        "orders",
        [sa.text("purchase_date DESC NULLS LAST"), sa.text("id DESC")],
        schema=S,
    )
    op.create_index("orders_by_status", "orders", ["order_status", "purchase_date"], schema=S)
    op.create_table(
        "order_items",
        sa.Column(
            "amazon_order_id",
            sa.Text,
            sa.ForeignKey(f"{S}.orders.amazon_order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("order_item_id", sa.Text, primary_key=True),
        sa.Column("asin", sa.Text),
        sa.Column("seller_sku", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("quantity_ordered", sa.Integer, nullable=False),
        sa.Column("quantity_shipped", sa.Integer),
        sa.Column("item_price_amount", MONEY),
        sa.Column("item_price_currency", sa.Text),
        sa.Column("item_tax_amount", MONEY),
        sa.Column("raw_payload", postgresql.JSONB, nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "inventory",
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
        sa.Column("raw_payload", postgresql.JSONB, nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        schema=S,
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("api_version", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("window_start", TS),
        sa.Column("window_end", TS),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fetched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("upserted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_fetched", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notified", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("notify_error", sa.Text),
        sa.Column("watermark", TS),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'deferred', 'failed')", name="sync_runs_status"
        ),
        schema=S,
    )
    op.create_index("sync_runs_newest", "sync_runs", ["kind", sa.text("id DESC")], schema=S)
    op.create_table(
        "sync_state",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("watermark", TS),
        sa.Column("window_s", sa.Integer),
        sa.Column("last_success_at", TS),
        sa.Column("last_run_id", sa.BigInteger),
        schema=S,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amazon_order_id", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("batch_key", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("last_attempt_at", TS),
        sa.Column("delivered_at", TS),
        #: set when Slack refused the message itself (e.g. invalid_payload) too many times
        sa.Column("gave_up_at", TS),
        sa.UniqueConstraint("kind", "amazon_order_id", name="notifications_once_per_order"),
        schema=S,
    )
    op.create_index(
        "notifications_pending",
        "notifications",
        ["id"],
        schema=S,
        postgresql_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"),
    )


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {S} CASCADE")
