"""product_monitor: ``products.list_price`` dropped; the list price is a daily metric only.

The list price was stored twice: in ``product_metrics_daily`` (per day, what the API and the
reports read) and in ``products``, where nothing read it. As part of a product's content it
made every daily capture rewrite the product row, because Amazon's list price moves with the
price (in the simulator it moves every day). That was 100 row rewrites per job of 100 ASINs with
their WAL, and nothing else in the content had changed. ``products`` now holds content that
rarely changes (title, brand, category, breadcrumbs, image, URL, currency), and a capture
rewrites the row only when one of those changed.

Revision ID: product_monitor_0005
Revises: product_monitor_0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "product_monitor_0005"
down_revision: str | Sequence[str] | None = "product_monitor_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("products", "list_price", schema="product_monitor")


def downgrade() -> None:
    op.add_column("products", sa.Column("list_price", sa.Numeric(18, 4)), schema="product_monitor")
    # the latest daily list price per product, as it was last written
    op.execute(
        """
        UPDATE product_monitor.products p SET list_price = m.list_price
        FROM (SELECT DISTINCT ON (asin) asin, list_price FROM product_monitor.product_metrics_daily
              ORDER BY asin, date DESC) m
        WHERE m.asin = p.asin
        """
    )
