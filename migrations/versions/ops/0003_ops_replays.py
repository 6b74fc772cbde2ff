"""ops: the progress of the console's DLQ replays (``GET /ops/replays/{replay_id}``).

One row per replay, keyed by the id the page chose (a UUID), written by the ``ops-api``
invocation that runs the replay after each batch and read by the invocations the page's polls
reach — on Lambda those are other instances, so the progress lives here, not in memory. The
action itself (who, what, outcome) stays in ``ops.audit``; ``audit_id`` links the two.

Revision ID: ops_0003
Revises: ops_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ops_0003"
down_revision: str | Sequence[str] | None = "ops_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("replay_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("audit_id", sa.BigInteger, sa.ForeignKey("ops.audit.id"), nullable=False),
        sa.Column("dlq", sa.Text, nullable=False),
        sa.Column("params", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        # the last report of opsdeck.replay's progress callback
        sa.Column("progress", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        # NULL while it runs; then "ok" or the problem's type slug, as in ops.audit
        sa.Column("outcome", sa.Text),
        sa.Column("result", postgresql.JSONB),
        schema="ops",
    )
    op.create_index("replays_audit_id", "replays", ["audit_id"], schema="ops")


def downgrade() -> None:
    op.drop_index("replays_audit_id", table_name="replays", schema="ops")
    op.drop_table("replays", schema="ops")
