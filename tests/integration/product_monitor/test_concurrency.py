"""Two promotions of the same ASINs at once, on committed data: the later capture wins."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from functions.product_monitor import domain, ingest, repository
from functions.product_monitor.settings import load

ASINS = [f"B0RACE{i:04d}" for i in range(20)]
DAY = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0)


def _items(captured: datetime, title: str | None = None) -> list[domain.Normalised]:
    """What a job of ``ASINS`` normalises to; ``title`` stands for content Apify showed then."""
    items = []
    for asin in ASINS:
        item = {"asin": asin, "title": title or f"Product {asin}", "price": 10.5, "stars": 4.2}
        items.append(domain.normalise(item, captured))
    return items


def _job(engine, kind: str, at: datetime) -> repository.Job:
    with engine.begin() as conn:
        repository.ensure_partitions(conn, at.date(), 1)
        _, jobs = repository.create_run(conn, kind, "test", [ASINS], at)
        job = repository.claim_job(conn, jobs[0][0], at)
    assert job is not None
    return job


def _promote(conn, job: repository.Job, items, at: datetime) -> repository.Promotion:
    return repository.promote(conn, job.id, job.run_id, items, [], [], None, ingest.thresholds_of(load()), at)


def _waiting_on_a_lock(engine, pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as probe:
        while time.monotonic() < deadline:
            wait = probe.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar()
            probe.rollback()
            if wait == "Lock":
                return True
            time.sleep(0.02)
    return False


@pytest.mark.usefixtures("committed_db")  # the runtime role, real commits, every table emptied after
def test_an_earlier_capture_promoting_alongside_a_later_one_does_not_win_the_product():
    """The later capture (content as stored, so it rewrites nothing) commits while the earlier
    one (other content) waits: the earlier one sees the later capture and leaves the product."""
    from opsdeck import db

    engine = db.create_engine(db.database_url())  # a connection each (NullPool): two containers and a probe
    first, earlier, later = DAY, DAY + timedelta(days=1, hours=1), DAY + timedelta(days=1, hours=2)
    with engine.begin() as conn:
        repository.track(conn, ASINS, "test", first)
        assert _promote(conn, _job(engine, "daily", first), _items(first), first).products == len(ASINS)
    later_job, earlier_job = _job(engine, "daily", later), _job(engine, "health", earlier)

    holder = engine.connect()
    tx = holder.begin()
    assert _promote(holder, later_job, _items(later), later).products == 0  # nothing changed
    outcome: dict[str, object] = {}

    def earlier_promotion() -> None:
        with engine.connect() as conn:
            outcome["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.commit()
            started.set()
            with conn.begin():
                renamed = _items(earlier, "A title since replaced")
                outcome["promotion"] = _promote(conn, earlier_job, renamed, earlier)

    started = threading.Event()
    thread = threading.Thread(target=earlier_promotion)
    thread.start()
    try:
        assert started.wait(10)
        assert _waiting_on_a_lock(engine, outcome["pid"])  # type: ignore[arg-type]
    finally:
        tx.commit()
        holder.close()
        thread.join(30)
    assert not thread.is_alive()
    promotion = outcome["promotion"]
    assert promotion.status == "promoted" and promotion.products == 0  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT asin, title, updated_at FROM product_monitor.products WHERE asin = ANY(:a)"),
            {"a": ASINS},
        ).all()
        captures = conn.execute(
            text(
                "SELECT DISTINCT captured_at FROM product_monitor.product_metrics_daily "
                "WHERE asin = ANY(:a) AND date = :d"
            ),
            {"a": ASINS, "d": later.date()},
        ).all()
    assert len(rows) == len(ASINS)
    assert all(r.title == f"Product {r.asin}" and r.updated_at == first for r in rows)
    assert [r.captured_at for r in captures] == [later]  # the day's metric row is the later capture's
