"""What the API returns for a product, built the same way by the API (on a cache miss) and
by the worker (writing the new summaries through to the cache after a promotion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from . import cachekeys, repository


def _money(amount: Any, currency: str | None) -> dict[str, Any] | None:
    return None if amount is None else {"amount": format(amount, "f"), "currency": currency}


def summary_view(row: dict[str, Any]) -> dict[str, Any]:
    latest = None
    if row["date"] is not None:
        latest = {
            "date": row["date"],
            "price": _money(row["price"], row["m_currency"]),
            "list_price": _money(row["m_list_price"], row["m_currency"]),
            "rating": row["rating"],
            "reviews_count": row["reviews_count"],
            "bsr": row["bsr"],
            "bsr_category": row["bsr_category"],
            "in_stock": row["in_stock"],
            "captured_at": row["captured_at"],
        }
    return {
        "asin": row["asin"],
        "tracked": row["tracked"],
        "title": row["title"],
        "brand": row["brand"],
        "category": row["category"],
        "breadcrumbs": row["breadcrumbs"],
        "image_url": row["image_url"],
        "url": row["url"],
        "updated_at": row["updated_at"],
        "latest": latest,
        "recent_alerts": row["alerts"],
    }


def summaries(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {a: summary_view(r) for a, r in repository.product_summaries(conn, asins).items()}


def write_through(conn: Connection, asins: Sequence[str]) -> int:
    """The seed's "workers update Redis": after a commit (and ``cachekeys.invalidate``), store
    the new summaries under the current generations, so the next read is a hit."""
    return cachekeys.store_summaries(summaries(conn, asins))
