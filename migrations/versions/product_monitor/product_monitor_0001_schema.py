"""product_monitor: tracked Amazon products, daily metrics, competitors, alerts, recommendations,
ingest runs and jobs (schema ``product_monitor``), and the raw Apify items (``staging_raw``).

* ``products``: one row per ASIN (tracked or seen as a competitor); ``updated_at`` is the
  capture time of the item it was last written from (the upsert version: an older replay
  never overwrites a newer capture).
* ``product_metrics_daily``: one row per ASIN per UTC day, the latest capture of that day
  (health samples during the day overwrite the morning's row: ``captured_at`` is the version).
  ``PARTITION BY RANGE (date)``, one partition per month, named ``product_metrics_daily_pYYYYMM``.
  ``product_monitor.ensure_metric_partitions(from, months)`` creates the missing ones; this
  migration creates the current month and the next three, the planner calls it every run
  for the current month and the next two, and the worker for the day it writes (a
  ``to_regclass`` probe when the partition exists). The function is ``SECURITY DEFINER``: the
  runtime role has no DDL, so it creates partitions with its owner's rights and nothing more.
  The primary key ``(asin, date)`` is the seed's index (appendix B), with the metrics
  ``INCLUDE``d so that range reads are index-only.
* ``competitor_links``: (asin → competitor_asin) pairs, both 10-character ASINs.
* ``alerts``: anomalies, unique per (asin, kind, observed_date) so that a replayed job adds none.
* ``recommendations``: versioned rule-based (or LLM) competitive reports and recommendations,
  ``(asin, version)``; a regeneration with the same content adds no version (``content_hash``).
* ``ingest_runs`` / ``ingest_jobs``: a run shards the tracked ASINs into jobs of 50-100; a job's
  status moves queued → running → succeeded | failed; promotion flips it to succeeded in the
  same transaction as the core-table writes (``FOR UPDATE`` on the job row: a duplicate
  delivery waits, then sees it done and writes nothing).
* ``staging_raw.raw_events``: every item exactly as Apify returned it, per (job_id, attempt, item_index);
  what ``opsdeck product-monitor replay-raw`` re-normalises.

Revision ID: product_monitor_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "product_monitor_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("product_monitor",)
depends_on: str | Sequence[str] | None = None

S = "product_monitor"
RAW = "staging_raw"
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 4)
ASIN_CHECK = "~ '^[A-Z0-9]{10}$'"

ENSURE_PARTITIONS = f"""
CREATE OR REPLACE FUNCTION {S}.ensure_metric_partitions(start_month date, months integer)
RETURNS integer LANGUAGE plpgsql
-- runs as its owner (the capability's owner role): the runtime role has no DDL of its own and
-- may create exactly these partitions, nothing else; a fixed search_path (no hijacking)
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m date := date_trunc('month', start_month)::date;
  created integer := 0;
  name text;
BEGIN
  FOR i IN 0 .. greatest(months, 1) - 1 LOOP
    name := 'product_metrics_daily_p' || to_char(m, 'YYYYMM');
    IF to_regclass('{S}.' || name) IS NULL THEN
      -- two planners at once: the second waits here, then finds the table
      PERFORM pg_advisory_xact_lock(hashtext('{S}.metric_partitions'));
      IF to_regclass('{S}.' || name) IS NULL THEN
        EXECUTE format(
          'CREATE TABLE {S}.%I PARTITION OF {S}.product_metrics_daily FOR VALUES FROM (%L) TO (%L)',
          name, m, (m + interval '1 month')::date);
        created := created + 1;
      END IF;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN created;
END $$
"""


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {S}")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW}")
    op.create_table(
        "products",
        sa.Column("asin", sa.Text, primary_key=True),
        sa.Column("tracked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("title", sa.Text),
        sa.Column("brand", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("breadcrumbs", postgresql.JSONB),
        sa.Column("image_url", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("currency", sa.Text),
        sa.Column("list_price", MONEY),
        sa.Column("tracked_at", TS),
        sa.Column("tracked_by", sa.Text),
        sa.Column("first_seen_at", TS, nullable=False, server_default=sa.func.now()),
        #: capture time of the item last written (the upsert version); NULL = never fetched
        sa.Column("updated_at", TS),
        sa.Column("last_job_id", postgresql.UUID(as_uuid=True)),
        sa.CheckConstraint(f"asin {ASIN_CHECK}", name="products_asin_format"),
        schema=S,
    )
    op.create_index("products_tracked", "products", ["asin"], schema=S, postgresql_where=sa.text("tracked"))

    op.execute(
        f"""
        CREATE TABLE {S}.product_metrics_daily (
            asin text NOT NULL,
            date date NOT NULL,
            price numeric(18, 4),
            currency text,
            list_price numeric(18, 4),
            rating numeric(3, 2),
            reviews_count integer,
            bsr integer,
            bsr_category text,
            in_stock boolean,
            captured_at timestamptz NOT NULL,
            job_id uuid,
            CONSTRAINT product_metrics_daily_pkey PRIMARY KEY (asin, date)
                INCLUDE (price, rating, reviews_count, bsr, in_stock)
        ) PARTITION BY RANGE (date)
        """
    )
    op.execute(ENSURE_PARTITIONS)
    op.execute(f"SELECT {S}.ensure_metric_partitions(current_date, 4)")

    op.create_table(
        "competitor_links",
        sa.Column("asin", sa.Text, primary_key=True),
        sa.Column("competitor_asin", sa.Text, primary_key=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text),
        sa.CheckConstraint("asin <> competitor_asin", name="competitor_links_not_self"),
        sa.CheckConstraint(
            f"asin {ASIN_CHECK} AND competitor_asin {ASIN_CHECK}", name="competitor_links_asins"
        ),
        schema=S,
    )
    op.create_index("competitor_links_by_competitor", "competitor_links", ["competitor_asin"], schema=S)

    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("asin", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("observed_date", sa.Date, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False),
        sa.Column("job_id", postgresql.UUID(as_uuid=True)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("asin", "kind", "observed_date", name="alerts_once_per_day"),
        sa.CheckConstraint(
            "kind IN ('price_drop', 'price_spike', 'rating_drop', 'bsr_jump', 'out_of_stock')",
            name="alerts_kind",
        ),
        schema=S,
    )
    op.create_index("alerts_by_asin", "alerts", ["asin", sa.text("id DESC")], schema=S)

    op.create_table(
        "recommendations",
        sa.Column("asin", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("generator", sa.Text, nullable=False),
        sa.Column("generated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("report", postgresql.JSONB, nullable=False),
        sa.Column("items", postgresql.JSONB, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.CheckConstraint("version >= 1", name="recommendations_version"),
        schema=S,
    )

    op.create_table(
        "ingest_runs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("asins_total", sa.Integer, nullable=False),
        sa.Column("jobs_total", sa.Integer, nullable=False),
        sa.Column("jobs_succeeded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("jobs_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_ok", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0"),
        sa.Column("kpis", postgresql.JSONB),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'failed')", name="ingest_runs_status"
        ),
        sa.CheckConstraint("kind IN ('daily', 'health', 'manual')", name="ingest_runs_kind"),
        schema=S,
    )
    op.create_index("ingest_runs_recent", "ingest_runs", [sa.text("created_at DESC")], schema=S)
    op.create_table(
        "ingest_jobs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "run_id", postgresql.UUID(as_uuid=True), sa.ForeignKey(f"{S}.ingest_runs.id"), nullable=False
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("asins", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("items_ok", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("missing", postgresql.ARRAY(sa.Text)),
        sa.Column("cost_usd", sa.Numeric(14, 6)),
        sa.Column("apify_run_id", sa.Text),
        #: [{asin, item_index, reason}] — malformed items and upstream errors, capped
        sa.Column("errors", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.UniqueConstraint("run_id", "seq", name="ingest_jobs_run_seq"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="ingest_jobs_status"
        ),
        sa.CheckConstraint("cardinality(asins) BETWEEN 1 AND 100", name="ingest_jobs_batch_size"),
        schema=S,
    )
    op.create_index("ingest_jobs_by_run", "ingest_jobs", ["run_id", "status"], schema=S)

    op.create_table(
        "raw_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("run_id", postgresql.UUID(as_uuid=True), nullable=False),
        #: the job's delivery that fetched it (a redelivered job may fetch a new Apify run)
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("asin", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("item", postgresql.JSONB, nullable=False),
        sa.UniqueConstraint("job_id", "attempt", "item_index", name="raw_events_job_item"),
        schema=RAW,
    )
    op.create_index("raw_events_by_received", "raw_events", ["received_at"], schema=RAW)


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {RAW} CASCADE")
    op.execute(f"DROP SCHEMA IF EXISTS {S} CASCADE")
