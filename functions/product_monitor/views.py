"""What the API returns for a product, built the same way by the API (on a cache miss) and
by the worker (writing the new summaries through to the cache after a promotion)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection

from opsdeck import db
from opsdeck.errors import NotFound

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
        "reviews": row.get("reviews"),
        "recent_alerts": row["alerts"],
    }


def summaries(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {a: summary_view(r) for a, r in repository.product_summaries(conn, asins).items()}


def write_through(conn: Connection, asins: Sequence[str]) -> int:
    """The seed's "workers update Redis": after a commit (and ``cachekeys.invalidate``), store
    the new summaries under the current generations, so the next read is a hit."""
    return cachekeys.store_summaries(summaries(conn, asins))


def summary(asin: str) -> dict[str, Any]:
    """One product's summary (``NotFound`` for an unknown ASIN): the cache loader of REST and GraphQL."""
    with db.transaction() as conn:
        found = summaries(conn, [asin])
    if asin not in found:
        raise NotFound(f"unknown ASIN {asin}")
    return found[asin]


def metrics(asin: str, range_: str) -> dict[str, Any]:
    since = date.today() - timedelta(days=cachekeys.RANGES[range_] - 1)
    with db.transaction() as conn:
        if not repository.exists(conn, asin):
            raise NotFound(f"unknown ASIN {asin}")
        rows = repository.metrics_range(conn, asin, since)
    points = [
        {
            "date": r["date"],
            "price": None if r["price"] is None else format(r["price"], "f"),
            "currency": r["currency"],
            "rating": r["rating"],
            "reviews_count": r["reviews_count"],
            "bsr": r["bsr"],
            "in_stock": r["in_stock"],
        }
        for r in rows
    ]
    return {"asin": asin, "range": range_, "since": since, "points": points}
