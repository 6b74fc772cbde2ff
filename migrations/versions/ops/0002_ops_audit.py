"""ops: the audit of the ops console's actions (who replayed, fired, enabled, re-invoked what).

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0002"
down_revision: str | Sequence[str] | None = "ops_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("params", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        # NULL while the action runs: a row with no outcome is an action that never finished
        sa.Column("outcome", sa.Text),
        sa.Column("result", postgresql.JSONB),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("source_ip", sa.Text),
        schema="ops",
    )
    op.create_index("audit_at", "audit", [sa.text("at DESC")], schema="ops")


def downgrade() -> None:
    op.drop_index("audit_at", table_name="audit", schema="ops")
    op.drop_table("audit", schema="ops")
