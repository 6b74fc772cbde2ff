"""snacks: statistics read integer cents from a partial covering index.

The monthly figures group ~12,000 purchases into ~7,000 (snack, currency) groups; summing
``quantity * unit_price`` as ``numeric`` row by row was most of the statement's time. A purchase
now carries ``line_cents`` (``quantity * unit_price`` in cents, exact: ``unit_price`` has two
decimals; at most 10,000 x 999,999,999,999.99 x 100 < 2^63), and the period index holds only the
rows statistics count (not canceled) with the columns they read, so the scan is index-only and
the sums are integer sums. See docs/snacks.md "Statistics".

Revision ID: snacks_0002
Revises: snacks_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "snacks_0002"
down_revision: str | Sequence[str] | None = "snacks_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE snacks.purchases ADD COLUMN line_cents bigint
           GENERATED ALWAYS AS ((quantity * unit_price * 100)::bigint) STORED"""
    )
    op.execute(
        """CREATE INDEX purchases_period_counted ON snacks.purchases (ordered_at)
           INCLUDE (snack_id, currency, quantity, line_cents) WHERE order_status <> 'canceled'"""
    )
    op.execute("DROP INDEX snacks.purchases_period")


def downgrade() -> None:
    op.execute(
        """CREATE INDEX purchases_period ON snacks.purchases (ordered_at)
           INCLUDE (order_status, snack_id, quantity, unit_price, currency, order_id)"""
    )
    op.execute("DROP INDEX snacks.purchases_period_counted")
    op.execute("ALTER TABLE snacks.purchases DROP COLUMN line_cents")
