"""The product_monitor schema: tables agree with ``tables.py``, metrics are partitioned by month
with partitions created ahead, and the constraints the ingestion relies on hold."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from functions.product_monitor import tables


@pytest.mark.parametrize("table", list(tables.metadata.tables.values()), ids=lambda t: t.fullname)
def test_write_path_tables_match_the_migrated_columns(db, table):
    rows = db.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
        ),
        {"s": table.schema, "t": table.name},
    ).scalars()
    assert {c.name for c in table.columns} <= set(rows)


def _partitions(db) -> list[str]:
    return list(
        db.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'product_monitor.product_metrics_daily'::regclass ORDER BY 1"
            )
        ).scalars()
    )


def test_metrics_are_partitioned_by_month_with_the_coming_months_created(db):
    today = date.today()
    names = _partitions(db)
    first = f"product_metrics_daily_p{today:%Y%m}"
    assert first in names and len(names) >= 4
    year, month = today.year, today.month
    for _ in range(3):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        assert f"product_metrics_daily_p{year}{month:02d}" in names


def test_ensure_metric_partitions_creates_missing_months_once(db):
    created = db.execute(
        text("SELECT product_monitor.ensure_metric_partitions(DATE '2031-11-15', 3)")
    ).scalar()
    assert created == 3
    again = db.execute(text("SELECT product_monitor.ensure_metric_partitions(DATE '2032-01-01', 2)")).scalar()
    assert again == 1  # January 2032 existed, February is new
    assert {f"product_metrics_daily_p{m}" for m in ("203111", "203112", "203201", "203202")} <= set(
        _partitions(db)
    )
    now = datetime(2031, 12, 31, 23, 0, tzinfo=UTC)
    db.execute(
        text(
            "INSERT INTO product_monitor.product_metrics_daily (asin, date, price, captured_at) "
            "VALUES ('B000000001', DATE '2031-12-31', 10, :t)"
        ),
        {"t": now},
    )
    where = db.execute(
        text(
            "SELECT tableoid::regclass::text FROM product_monitor.product_metrics_daily "
            "WHERE asin = 'B000000001'"
        )
    ).scalar()
    assert where == "product_monitor.product_metrics_daily_p203112"


def test_a_metric_for_a_month_without_partition_is_refused(db):
    with pytest.raises(DBAPIError, match="no partition"), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO product_monitor.product_metrics_daily (asin, date, captured_at) "
                "VALUES ('B000000001', DATE '2090-01-01', now())"
            )
        )


def test_asins_and_batch_sizes_are_constrained(db):
    with pytest.raises(DBAPIError, match="products_asin_format"), db.begin_nested():
        db.execute(text("INSERT INTO product_monitor.products (asin) VALUES ('short')"))
    with pytest.raises(DBAPIError, match="competitor_links_not_self"), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO product_monitor.competitor_links (asin, competitor_asin) "
                "VALUES ('B000000001', 'B000000001')"
            )
        )
    run = uuid.uuid4()
    db.execute(
        text(
            "INSERT INTO product_monitor.ingest_runs "
            "(id, kind, trigger, status, created_at, asins_total, jobs_total) "
            "VALUES (:id, 'manual', 'test', 'running', now(), 101, 1)"
        ),
        {"id": run},
    )
    with pytest.raises(DBAPIError, match="ingest_jobs_batch_size"), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO product_monitor.ingest_jobs (id, run_id, seq, asins, status, created_at) "
                "VALUES (:id, :run, 0, :asins, 'queued', now())"
            ),
            {"id": uuid.uuid4(), "run": run, "asins": [f"B{i:09d}" for i in range(101)]},
        )
