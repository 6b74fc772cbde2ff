"""product_monitor: the staged raw arrays compressed with lz4 instead of pglz.

``staging_raw.raw_batches.items`` holds a job's actor response (~300 KB for 1,000 reviews);
PostgreSQL compresses it when it is stored out of line (TOAST). With the default ``pglz`` that
compression was the largest part of staging a job (~3-5 ms of server time for the reviews
array; ``lz4`` ~0.5 ms for a similar size, BENCHMARKS.md). ``SET COMPRESSION`` changes only how
new values are compressed: rows already stored stay as they are and read the same. A server
built without lz4 keeps pglz (slower, not wrong); RDS PostgreSQL 14+ has it.

Revision ID: product_monitor_0004
Revises: product_monitor_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "product_monitor_0004"
down_revision: str | Sequence[str] | None = "product_monitor_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            ALTER TABLE staging_raw.raw_batches ALTER COLUMN items SET COMPRESSION lz4;
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE 'lz4 not supported by this server: raw_batches.items keeps pglz';
        END $$
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE staging_raw.raw_batches ALTER COLUMN items SET COMPRESSION default")
