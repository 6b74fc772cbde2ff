"""product_monitor: raw items staged one row per (job, attempt, source), as the actor's JSON array.

* ``staging_raw.raw_batches``: what an actor returned for one delivery of a job, ``items`` being
  the JSON array exactly as received (``json``, not ``jsonb``: the text is validated, not parsed
  into binary, and kept byte for byte), ``item_count`` its length. One row and one index entry
  per source and attempt instead of one per item (a job of 100 ASINs with 10 reviews each staged
  1,100 rows with three index entries each: the largest cost of a promotion).
* ``staging_raw.raw_events`` becomes a view with the old columns, one row per item
  (``json_array_elements`` of the batches; ``item`` as ``jsonb``, ``asin`` read from the item as
  before): audits and ad-hoc queries read items as they did.

Revision ID: product_monitor_0003
Revises: product_monitor_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "product_monitor_0003"
down_revision: str | Sequence[str] | None = "product_monitor_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAW = "staging_raw"
TS = sa.DateTime(timezone=True)

#: the ASIN an item claims (the fields ``domain`` reads), when it is a well-formed one
_ASIN = (
    "upper(btrim(coalesce(nullif(e.item->>'asin', ''), nullif(e.item->>'ASIN', ''), "
    "nullif(e.item->>'productAsin', ''), nullif(e.item->>'originalAsin', ''))))"
)

_VIEW = f"""
    CREATE VIEW {RAW}.raw_events AS
    SELECT b.job_id, b.run_id, b.attempt, (e.n - 1)::integer AS item_index,
           CASE WHEN {_ASIN} ~ '^[A-Z0-9]{{10}}$' THEN {_ASIN} END AS asin,
           b.actor, b.received_at, e.item::jsonb AS item, b.source
    FROM {RAW}.raw_batches b
    CROSS JOIN LATERAL json_array_elements(b.items) WITH ORDINALITY AS e(item, n)
"""


def upgrade() -> None:
    op.create_table(
        "raw_batches",
        sa.Column("job_id", postgresql.UUID(as_uuid=True), primary_key=True),
        #: the job's delivery that fetched it (a redelivered job may fetch a new Apify run)
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("run_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("items", postgresql.JSON, nullable=False),
        sa.CheckConstraint("source IN ('product', 'reviews')", name="raw_batches_source"),
        sa.CheckConstraint("item_count >= 1", name="raw_batches_not_empty"),
        schema=RAW,
    )
    op.create_index("raw_batches_by_received", "raw_batches", ["received_at"], schema=RAW)
    op.execute(
        f"""
        INSERT INTO {RAW}.raw_batches (job_id, attempt, source, run_id, actor, received_at, item_count, items)
        SELECT job_id, attempt, source, min(run_id::text)::uuid, min(actor), min(received_at), count(*),
               json_agg(item ORDER BY item_index)
        FROM {RAW}.raw_events GROUP BY job_id, attempt, source
        """
    )
    op.drop_table("raw_events", schema=RAW)
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute(f"ALTER VIEW {RAW}.raw_events RENAME TO raw_events_view")
    op.create_table(
        "raw_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("run_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("asin", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("item", postgresql.JSONB, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default="product"),
        sa.CheckConstraint("source IN ('product', 'reviews')", name="raw_events_source"),
        sa.UniqueConstraint("job_id", "attempt", "source", "item_index", name="raw_events_job_item"),
        schema=RAW,
    )
    op.create_index("raw_events_by_received", "raw_events", ["received_at"], schema=RAW)
    op.execute(
        f"""
        INSERT INTO {RAW}.raw_events
            (job_id, run_id, attempt, item_index, asin, actor, received_at, item, source)
        SELECT job_id, run_id, attempt, item_index, asin, actor, received_at, item, source
        FROM {RAW}.raw_events_view
        """
    )
    op.execute(f"DROP VIEW {RAW}.raw_events_view")
    op.drop_table("raw_batches", schema=RAW)
