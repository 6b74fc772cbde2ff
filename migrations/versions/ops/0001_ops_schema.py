"""ops: the platform's own schema (deployment records).

Revision ID: ops_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ops_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ops",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ops")
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heads", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        schema="ops",
    )


def downgrade() -> None:
    op.drop_table("migration_runs", schema="ops")
    op.execute("DROP SCHEMA IF EXISTS ops")
