"""SQLAlchemy ``Table`` objects of the write path (migrations ``product_monitor_0001``/``0002`` create them).

Only ``opsdeck.db.bulk_upsert`` needs them (it reads the column types to encode arrays);
reads are SQL text. ``tests/integration/product_monitor`` checks them against the database.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID

S = "product_monitor"
TS = DateTime(timezone=True)
metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("asin", Text, primary_key=True),
    Column("tracked", Boolean),
    Column("title", Text),
    Column("brand", Text),
    Column("category", Text),
    Column("breadcrumbs", JSONB),
    Column("image_url", Text),
    Column("url", Text),
    Column("currency", Text),
    Column("tracked_at", TS),
    Column("tracked_by", Text),
    Column("first_seen_at", TS),
    Column("updated_at", TS),
    Column("last_job_id", UUID(as_uuid=True)),
    schema=S,
)

metrics_daily = Table(
    "product_metrics_daily",
    metadata,
    Column("asin", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("price", Numeric(18, 4)),
    Column("currency", Text),
    Column("list_price", Numeric(18, 4)),
    Column("rating", Numeric(3, 2)),
    Column("reviews_count", Integer),
    Column("bsr", Integer),
    Column("bsr_category", Text),
    Column("in_stock", Boolean),
    Column("captured_at", TS),
    Column("job_id", UUID(as_uuid=True)),
    schema=S,
)

competitor_links = Table(
    "competitor_links",
    metadata,
    Column("asin", Text, primary_key=True),
    Column("competitor_asin", Text, primary_key=True),
    Column("created_at", TS),
    Column("created_by", Text),
    schema=S,
)

raw_batches = Table(
    "raw_batches",
    metadata,
    Column("job_id", UUID(as_uuid=True), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("run_id", UUID(as_uuid=True)),
    Column("actor", Text),
    Column("received_at", TS),
    Column("item_count", Integer),
    Column("items", JSON),
    schema="staging_raw",
)

#: a view: one row per item of ``raw_batches``
raw_events = Table(
    "raw_events",
    metadata,
    Column("job_id", UUID(as_uuid=True)),
    Column("run_id", UUID(as_uuid=True)),
    Column("attempt", Integer),
    Column("item_index", Integer),
    Column("asin", Text),
    Column("actor", Text),
    Column("received_at", TS),
    Column("item", JSONB),
    Column("source", Text),
    schema="staging_raw",
)

review_summaries = Table(
    "review_summaries",
    metadata,
    Column("asin", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("reviews_read", Integer),
    Column("average_rating", Numeric(3, 2)),
    Column("histogram", ARRAY(Integer)),
    Column("verified_share", Numeric(5, 4)),
    Column("latest_review_date", Date),
    Column("negative", JSONB),
    Column("positive", JSONB),
    Column("captured_at", TS),
    Column("job_id", UUID(as_uuid=True)),
    schema=S,
)

ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("run_id", UUID(as_uuid=True)),
    Column("seq", Integer),
    Column("asins", ARRAY(Text)),
    Column("status", Text),
    Column("created_at", TS),
    schema=S,
)
