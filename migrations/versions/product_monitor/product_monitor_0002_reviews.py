"""product_monitor: review summaries (the reviews actor), raw items tagged by source.

* ``review_summaries``: one row per ASIN per UTC day, the summary of the reviews the reviews
  actor returned for it that day (reviews read, average rating, histogram 1-5, share verified,
  latest review date, a few negative / positive snippets). A later capture of the day replaces
  an earlier one (``captured_at`` is the version), as for the metrics. Not partitioned: one
  small row per tracked ASIN per day (~10 MB a year for 10,000 ASINs).
* ``staging_raw.raw_events.source``: ``product`` (the product-details actor) or ``reviews``;
  the item index counts within its source, so the key becomes (job, attempt, source, index).
* ``ingest_jobs``: the reviews run id (resumed on redelivery like the product run) and the
  job's review counts; ``ingest_runs``: the run's review counts.

Tables created here are owned by the capability's owner role (migrations run as it) and the
runtime role gets its DML through the owner's default privileges (``opsdeck.migrations``).

Revision ID: product_monitor_0002
Revises: product_monitor_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "product_monitor_0002"
down_revision: str | Sequence[str] | None = "product_monitor_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "product_monitor"
RAW = "staging_raw"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_summaries",
        sa.Column("asin", sa.Text, primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("reviews_read", sa.Integer, nullable=False),
        sa.Column("average_rating", sa.Numeric(3, 2)),
        #: reviews per star, 1 to 5
        sa.Column("histogram", postgresql.ARRAY(sa.Integer), nullable=False),
        sa.Column("verified_share", sa.Numeric(5, 4)),
        sa.Column("latest_review_date", sa.Date),
        #: [{rating, title, text, date, verified, variant}] — at most three each
        sa.Column("negative", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("positive", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("job_id", postgresql.UUID(as_uuid=True)),
        sa.CheckConstraint("reviews_read >= 1", name="review_summaries_read"),
        sa.CheckConstraint("cardinality(histogram) = 5", name="review_summaries_histogram"),
        sa.CheckConstraint("asin ~ '^[A-Z0-9]{10}$'", name="review_summaries_asin_format"),
        schema=S,
    )
    op.add_column(
        "raw_events", sa.Column("source", sa.Text, nullable=False, server_default="product"), schema=RAW
    )
    op.create_check_constraint(
        "raw_events_source", "raw_events", "source IN ('product', 'reviews')", schema=RAW
    )
    op.drop_constraint("raw_events_job_item", "raw_events", schema=RAW)
    op.create_unique_constraint(
        "raw_events_job_item", "raw_events", ["job_id", "attempt", "source", "item_index"], schema=RAW
    )
    op.add_column("ingest_jobs", sa.Column("apify_reviews_run_id", sa.Text), schema=S)
    for table in ("ingest_jobs", "ingest_runs"):
        op.add_column(
            table, sa.Column("reviews_ok", sa.Integer, nullable=False, server_default="0"), schema=S
        )
        op.add_column(
            table, sa.Column("reviews_failed", sa.Integer, nullable=False, server_default="0"), schema=S
        )


def downgrade() -> None:
    for table in ("ingest_jobs", "ingest_runs"):
        op.drop_column(table, "reviews_failed", schema=S)
        op.drop_column(table, "reviews_ok", schema=S)
    op.drop_column("ingest_jobs", "apify_reviews_run_id", schema=S)
    op.drop_constraint("raw_events_job_item", "raw_events", schema=RAW)
    op.execute(f"DELETE FROM {RAW}.raw_events WHERE source = 'reviews'")
    op.create_unique_constraint(
        "raw_events_job_item", "raw_events", ["job_id", "attempt", "item_index"], schema=RAW
    )
    op.drop_constraint("raw_events_source", "raw_events", schema=RAW)
    op.drop_column("raw_events", "source", schema=RAW)
    op.drop_table("review_summaries", schema=S)
