"""platform_sync: platforms, task-type configuration and scheduler state, jobs and their attempts.

* ``platforms``: soft-deleted (``deleted_at``) so that the job history keeps its platform;
  the name is unique among live platforms (case-insensitive). ``auth_secret_ref`` names a
  Secrets Manager secret: the value itself is never stored.
* ``task_types``: one row per task type (``sync``, ``valid``) holding its configuration
  (enabled, interval, max concurrency, retry policy) and the scheduler's durable state
  (``running`` / ``paused`` / ``stopped``). Control calls lock this row (``FOR UPDATE``).
* ``jobs``: one row per job; a scheduled job's id is deterministic (task type, platform,
  scheduled minute) and (platform, task type, scheduled minute) is unique for scheduled jobs,
  so a repeated tick inserts nothing. ``job_attempts``: every call to the platform.

Revision ID: platform_sync_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "platform_sync_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("platform_sync",)
depends_on: str | Sequence[str] | None = None

S = "platform_sync"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {S}")
    op.create_table(
        "platforms",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("endpoints", postgresql.JSONB, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("connect_timeout_s", sa.Float, nullable=False),
        sa.Column("read_timeout_s", sa.Float, nullable=False),
        sa.Column("auth_header", sa.Text),
        sa.Column("auth_secret_ref", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", TS),
        schema=S,
    )
    op.create_index(
        "platforms_live_name",
        "platforms",
        [sa.text("lower(name)")],
        unique=True,
        schema=S,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "platforms_active",
        "platforms",
        ["id"],
        schema=S,
        postgresql_where=sa.text("deleted_at IS NULL AND is_active"),
    )
    op.create_table(
        "task_types",
        sa.Column("task_type", sa.Text, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("interval_minutes", sa.Integer, nullable=False, server_default="1"),
        sa.Column("max_concurrent_jobs", sa.Integer, nullable=False, server_default="50"),
        sa.Column("retry_max_attempts", sa.Integer, nullable=False, server_default="3"),
        sa.Column("retry_backoff_s", sa.Integer, nullable=False, server_default="10"),
        sa.Column("state", sa.Text, nullable=False, server_default="running"),
        sa.Column("state_changed_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("state_changed_by", sa.Text),
        sa.Column("last_run_at", TS),
        sa.Column("last_dispatched", sa.Integer),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('running', 'paused', 'stopped')", name="task_types_state"),
        sa.CheckConstraint("interval_minutes BETWEEN 1 AND 1440", name="task_types_interval"),
        schema=S,
    )
    op.execute(f"INSERT INTO {S}.task_types (task_type) VALUES ('sync'), ('valid')")
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("platform_id", sa.BigInteger, sa.ForeignKey(f"{S}.platforms.id"), nullable=False),
        sa.Column("task_type", sa.Text, sa.ForeignKey(f"{S}.task_types.task_type"), nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("scheduled_for", TS, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_outcome", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", TS),
        sa.Column("lease_until", TS),
        sa.Column("finished_at", TS),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'canceled')",
            name="jobs_status",
        ),
        schema=S,
    )
    op.create_index(
        "jobs_scheduled_once",
        "jobs",
        ["platform_id", "task_type", "scheduled_for"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("trigger = 'schedule'"),
    )
    op.create_index("jobs_created", "jobs", [sa.text("created_at DESC"), sa.text("id DESC")], schema=S)
    op.create_index(
        "jobs_open",
        "jobs",
        ["task_type", "status"],
        schema=S,
        postgresql_where=sa.text("status IN ('queued', 'running', 'retrying')"),
    )
    op.create_index("jobs_platform", "jobs", ["platform_id", sa.text("created_at DESC")], schema=S)
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.Text, sa.ForeignKey(f"{S}.jobs.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("summary", sa.Text),
        sa.Column("error", sa.Text),
        schema=S,
    )
    op.create_index("job_attempts_job", "job_attempts", ["job_id", "attempt"], schema=S)


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {S} CASCADE")
