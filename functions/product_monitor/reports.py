"""Competitive reports and recommendations: rule-based, versioned, regenerated after writes.

``regenerate(conn, asins)`` recomputes, for each tracked ASIN among ``asins``, the report
(own latest metrics against its linked competitors', its latest review summary) and the
recommendations
(``domain.recommend``), and stores a new version only when the content changed — so a
replayed job or a second refresh adds no version. An LLM can rewrite the recommendations'
texts: ``RECOMMENDATION_LLM=module:function`` names a plug-in ``(report, items) -> items``;
it is off by default, and never called in tests. A failing plug-in falls back to the rules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from opsdeck.observability import logger

from . import domain, repository
from .settings import load

S = "product_monitor"


def _plugin(spec: str) -> Callable[[dict, list], list] | None:
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        logger.warning(
            "recommendation plug-in not loadable", extra={"plugin": spec, "error": type(exc).__name__}
        )
        return None


def _rules(
    own: dict[str, Any], competitors: list[dict[str, Any]], reviews: dict[str, Any] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    settings = load()
    return domain.recommend(
        own, competitors, reviews, low_share=settings.review_low_share, min_read=settings.review_min_read
    )


def build(conn: Connection, asin: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    comps = repository.competitors(conn, asin)
    latest = repository.latest_metrics(conn, [asin, *comps])
    own = latest.get(asin) or {"asin": asin}
    reviews = repository.latest_review_summaries(conn, [asin]).get(asin)
    return _rules(own, [latest.get(c) or {"asin": c} for c in comps], reviews)


def regenerate(conn: Connection, asins: Sequence[str], *, trigger: str, force: bool = False) -> list[str]:
    """New versions for the tracked ``asins`` whose content changed; returns those ASINs
    (with ``force``, every tracked one). Six statements whatever the number of ASINs."""
    tracked = list(
        conn.execute(
            text(
                f"SELECT asin FROM {S}.products "
                "WHERE tracked AND asin = ANY(CAST(:a AS text[])) ORDER BY asin"
            ),
            {"a": repository._arr(asins)},
        ).scalars()
    )
    if not tracked:
        return []
    links: dict[str, list[str]] = {a: [] for a in tracked}
    for a, c in conn.execute(
        text(
            f"SELECT asin, competitor_asin FROM {S}.competitor_links "
            "WHERE asin = ANY(CAST(:a AS text[])) ORDER BY asin, competitor_asin"
        ),
        {"a": repository._arr(tracked)},
    ):
        links[a].append(c)
    involved = sorted(set(tracked) | {c for cs in links.values() for c in cs})
    latest = repository.latest_metrics(conn, involved)
    reviews = repository.latest_review_summaries(conn, tracked)
    previous = dict(
        conn.execute(
            text(
                f"""
                SELECT DISTINCT ON (asin) asin, content_hash FROM {S}.recommendations
                WHERE asin = ANY(CAST(:a AS text[])) ORDER BY asin, version DESC
                """
            ),
            {"a": repository._arr(tracked)},
        ).all()
    )
    plugin = _plugin(load().recommendation_llm)
    rows = []
    for asin in tracked:
        own = latest.get(asin) or {"asin": asin}
        report, items = _rules(own, [latest.get(c) or {"asin": c} for c in links[asin]], reviews.get(asin))
        generator = "rules"
        if plugin is not None:
            try:
                items = list(plugin(report, items))
                generator = "llm"
            except Exception as exc:
                logger.warning(
                    "recommendation plug-in failed", extra={"asin": asin, "error": type(exc).__name__}
                )
        digest = domain.content_hash(report, items)
        if digest != previous.get(asin):
            rows.append((asin, generator, report, items, digest))
    changed = repository.save_recommendations(conn, rows, trigger, datetime.now(UTC)) if rows else []
    return tracked if force else changed
