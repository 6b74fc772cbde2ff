"""product_monitor's SQL: every write set-based (``unnest`` arrays, one statement per table).

The promotion of a job (``promote``) is ONE transaction: the job row is locked first
(``FOR UPDATE``), so a duplicate delivery waits for the first, then finds the job
``succeeded`` and writes nothing; products, metrics, alerts, the job and its run's counters
commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from opsdeck.db import array_literal, bulk_upsert
from opsdeck.jsonutil import dumps

from . import tables
from .domain import Normalised, Thresholds, anomalies

S = "product_monitor"
MAX_ERRORS = 100
PREVIOUS_WINDOW_DAYS = 40


def _arr(values: Iterable[Any]) -> str:
    return array_literal(values)


# -------------------------------------------------------------------- tracking


def ensure_partitions(conn: Connection, day: date, months: int = 3) -> int:
    return int(
        conn.execute(text(f"SELECT {S}.ensure_metric_partitions(:d, :n)"), {"d": day, "n": months}).scalar()
    )


_known_partitions: set[str] = set()  # per container: partitions are never dropped by the code


def _partition_exists(conn: Connection, day: date) -> bool:
    name = f"{S}.product_metrics_daily_p{day:%Y%m}"
    if name in _known_partitions:
        return True
    found = bool(conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar())
    if found:
        _known_partitions.add(name)
    return found


def track(conn: Connection, asins: Sequence[str], by: str, now: datetime) -> list[str]:
    """Mark ``asins`` tracked (creating their rows); returns those that were not tracked before."""
    rows = conn.execute(
        text(
            f"""
            WITH wanted AS (SELECT DISTINCT unnest(CAST(:asins AS text[])) AS asin),
            before AS (SELECT asin FROM {S}.products WHERE asin IN (SELECT asin FROM wanted) AND tracked)
            INSERT INTO {S}.products AS p (asin, tracked, tracked_at, tracked_by)
            SELECT asin, true, :now, :by FROM wanted
            ON CONFLICT (asin) DO UPDATE SET tracked = true, tracked_at = :now, tracked_by = :by
                WHERE NOT p.tracked
            RETURNING asin
            """
        ),
        {"asins": _arr(asins), "now": now, "by": by},
    ).scalars()
    return sorted(rows)


def untrack(conn: Connection, asin: str) -> bool:
    return (
        conn.execute(
            text(f"UPDATE {S}.products SET tracked = false WHERE asin = :a AND tracked RETURNING asin"),
            {"a": asin},
        ).first()
        is not None
    )


def tracked_page(conn: Connection, after: str | None, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            f"SELECT asin, title, tracked_at, tracked_by, updated_at FROM {S}.products "
            "WHERE tracked AND asin > coalesce(:after, '') ORDER BY asin LIMIT :n"
        ),
        {"after": after, "n": limit},
    ).mappings()
    return [dict(r) for r in rows]


def fetch_set(conn: Connection) -> list[str]:
    """What a run fetches: the tracked ASINs and the competitors linked to them."""
    return list(
        conn.execute(
            text(
                f"""
                SELECT asin FROM {S}.products WHERE tracked
                UNION
                SELECT l.competitor_asin FROM {S}.competitor_links l
                JOIN {S}.products p ON p.asin = l.asin AND p.tracked
                ORDER BY 1
                """
            )
        ).scalars()
    )


def link(conn: Connection, asin: str, competitor: str, by: str, now: datetime) -> bool:
    conn.execute(
        text(f"INSERT INTO {S}.products (asin) VALUES (:a), (:c) ON CONFLICT (asin) DO NOTHING"),
        {"a": asin, "c": competitor},
    )
    row = conn.execute(
        text(
            f"INSERT INTO {S}.competitor_links (asin, competitor_asin, created_at, created_by) "
            "VALUES (:a, :c, :now, :by) ON CONFLICT DO NOTHING RETURNING asin"
        ),
        {"a": asin, "c": competitor, "now": now, "by": by},
    ).first()
    return row is not None


def unlink(conn: Connection, asin: str, competitor: str) -> bool:
    row = conn.execute(
        text(f"DELETE FROM {S}.competitor_links WHERE asin = :a AND competitor_asin = :c RETURNING asin"),
        {"a": asin, "c": competitor},
    ).first()
    return row is not None


def competitors(conn: Connection, asin: str) -> list[str]:
    return list(
        conn.execute(
            text(f"SELECT competitor_asin FROM {S}.competitor_links WHERE asin = :a ORDER BY 1"), {"a": asin}
        ).scalars()
    )


def linked_to(conn: Connection, asins: Sequence[str]) -> list[str]:
    """ASINs that have any of ``asins`` as a competitor (their reports depend on them)."""
    return list(
        conn.execute(
            text(
                f"SELECT DISTINCT asin FROM {S}.competitor_links "
                "WHERE competitor_asin = ANY(CAST(:a AS text[])) ORDER BY 1"
            ),
            {"a": _arr(asins)},
        ).scalars()
    )


# ------------------------------------------------------------------------ runs


def create_run(
    conn: Connection,
    kind: str,
    trigger: str,
    batches: Sequence[Sequence[str]],
    now: datetime,
    *,
    run_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, list[tuple[uuid.UUID, list[str]]]]:
    run_id = run_id or uuid.uuid4()
    jobs = [(uuid.uuid4(), list(b)) for b in batches]
    conn.execute(
        text(
            f"INSERT INTO {S}.ingest_runs (id, kind, trigger, status, created_at, asins_total, jobs_total) "
            "VALUES (:id, :kind, :trigger, 'running', :now, :n, :jobs)"
        ),
        {
            "id": run_id,
            "kind": kind,
            "trigger": trigger,
            "now": now,
            "n": sum(map(len, batches)),
            "jobs": len(jobs),
        },
    )
    # one statement for every job: the ASIN lists travel as one text[] of comma-joined batches
    conn.execute(
        text(
            f"""
            INSERT INTO {S}.ingest_jobs (id, run_id, seq, asins, status, created_at)
            SELECT j.id, :run, j.seq - 1, string_to_array(j.asins, ','), 'queued', :now
            FROM unnest(CAST(:ids AS uuid[]), CAST(:asins AS text[])) WITH ORDINALITY AS j(id, asins, seq)
            """
        ),
        {
            "run": run_id,
            "now": now,
            "ids": _arr(j for j, _ in jobs),
            "asins": _arr(",".join(a) for _, a in jobs),
        },
    )
    return run_id, jobs


def stale_queued_jobs(
    conn: Connection, older_than: datetime, limit: int = 1000
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Jobs still queued long after their run was planned (their message was lost): re-enqueued."""
    rows = conn.execute(
        text(
            f"SELECT id, run_id FROM {S}.ingest_jobs WHERE status = 'queued' AND created_at < :t "
            "ORDER BY created_at LIMIT :n"
        ),
        {"t": older_than, "n": limit},
    ).all()
    return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    run_id: uuid.UUID
    asins: list[str]
    attempts: int
    apify_run_id: str | None


def claim_job(conn: Connection, job_id: uuid.UUID, now: datetime) -> Job | None:
    """The job, now ``running`` with one more attempt; None when it already succeeded.

    Raises ``LookupError`` for an unknown job id (a message nobody planned).
    """
    row = conn.execute(
        text(
            f"""
            UPDATE {S}.ingest_jobs SET status = 'running', attempts = attempts + 1,
                   started_at = coalesce(started_at, :now)
            WHERE id = :id AND status IN ('queued', 'running', 'failed')
            RETURNING id, run_id, asins, attempts, apify_run_id
            """
        ),
        {"id": job_id, "now": now},
    ).first()
    if row is not None:
        return Job(row[0], row[1], list(row[2]), row[3], row[4])
    exists = conn.execute(text(f"SELECT status FROM {S}.ingest_jobs WHERE id = :id"), {"id": job_id}).first()
    if exists is None:
        raise LookupError(f"no ingest job {job_id}")
    return None


def record_apify_run(conn: Connection, job_id: uuid.UUID, apify_run_id: str) -> None:
    conn.execute(
        text(f"UPDATE {S}.ingest_jobs SET apify_run_id = :r WHERE id = :id"),
        {"r": apify_run_id, "id": job_id},
    )


def fail_job(conn: Connection, job: Job, reason: str, now: datetime) -> bool:
    """The job's last delivery failed: ``failed`` with the reason, counted once in its run."""
    row = conn.execute(
        text(
            f"""
            UPDATE {S}.ingest_jobs SET status = 'failed', finished_at = :now,
                   errors = errors || CAST(:err AS jsonb)
            WHERE id = :id AND status = 'running' RETURNING id
            """
        ),
        {"id": job.id, "now": now, "err": dumps([{"reason": reason[:300]}])},
    ).first()
    if row is None:
        return False
    _count_in_run(
        conn, job.run_id, succeeded=0, failed=1, items_ok=0, items_failed=0, cost=Decimal(0), now=now
    )
    return True


def _count_in_run(
    conn: Connection,
    run_id: uuid.UUID,
    *,
    succeeded: int,
    failed: int,
    items_ok: int,
    items_failed: int,
    cost: Decimal,
    now: datetime,
) -> bool:
    """Add a finished job to its run; when it was the last one, close the run with its KPIs."""
    row = conn.execute(
        text(
            f"""
            UPDATE {S}.ingest_runs SET jobs_succeeded = jobs_succeeded + :s, jobs_failed = jobs_failed + :f,
                   items_ok = items_ok + :ok, items_failed = items_failed + :bad, cost_usd = cost_usd + :cost
            WHERE id = :id
            RETURNING jobs_total, jobs_succeeded, jobs_failed
            """
        ),
        {"id": run_id, "s": succeeded, "f": failed, "ok": items_ok, "bad": items_failed, "cost": cost},
    ).first()
    if row is None or row[1] + row[2] < row[0]:
        return False
    close_run(conn, run_id, now)
    return True


def close_run(conn: Connection, run_id: uuid.UUID, now: datetime) -> None:
    """The run's status and KPIs (success rate, coverage, items, cost, duration)."""
    conn.execute(
        text(
            f"""
            UPDATE {S}.ingest_runs r SET
                status = CASE WHEN r.jobs_failed = 0 THEN 'succeeded'
                              WHEN r.jobs_succeeded = 0 THEN 'failed' ELSE 'partial' END,
                finished_at = :now,
                kpis = jsonb_build_object(
                    'job_success_rate', round(r.jobs_succeeded::numeric / greatest(r.jobs_total, 1), 4),
                    'item_success_rate',
                        round(r.items_ok::numeric / greatest(r.items_ok + r.items_failed, 1), 4),
                    'coverage', round(r.items_ok::numeric / greatest(r.asins_total, 1), 4),
                    'asins_missing', (SELECT coalesce(sum(cardinality(j.missing)), 0)
                                      FROM {S}.ingest_jobs j WHERE j.run_id = r.id),
                    'cost_usd', r.cost_usd,
                    'cost_per_item_usd', round(r.cost_usd / greatest(r.items_ok, 1), 6),
                    'duration_s', round(extract(epoch FROM (:now - r.created_at))::numeric, 3),
                    'alerts', (SELECT count(*) FROM {S}.alerts a
                               JOIN {S}.ingest_jobs j ON j.id = a.job_id WHERE j.run_id = r.id))
            WHERE r.id = :id
            """
        ),
        {"id": run_id, "now": now},
    )


# --------------------------------------------------------------------- staging


def write_raw(
    conn: Connection,
    job: Job,
    actor: str,
    items: Sequence[Any],
    asins: Sequence[str | None],
    received: datetime,
) -> int:
    if not items:
        return 0
    rows = [
        {
            "job_id": job.id,
            "run_id": job.run_id,
            "attempt": job.attempts,
            "item_index": i,
            "asin": asins[i],
            "actor": actor,
            "received_at": received,
            "item": item,
        }
        for i, item in enumerate(items)
    ]
    return bulk_upsert(
        conn, tables.raw_events, rows, key=("job_id", "attempt", "item_index"), do_nothing=True
    ).inserted


def raw_items(
    conn: Connection,
    *,
    job_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    since: datetime | None = None,
):
    """The latest attempt's raw items per job: (job_id, run_id, received_at, [items])."""
    rows = conn.execute(
        text(
            """
            WITH latest AS (
                SELECT job_id, max(attempt) AS attempt FROM staging_raw.raw_events
                WHERE (CAST(:job AS uuid) IS NULL OR job_id = :job)
                  AND (CAST(:run AS uuid) IS NULL OR run_id = :run)
                  AND (CAST(:since AS timestamptz) IS NULL OR received_at >= :since)
                GROUP BY job_id)
            SELECT e.job_id, e.run_id, max(e.received_at), jsonb_agg(e.item ORDER BY e.item_index)
            FROM staging_raw.raw_events e JOIN latest l USING (job_id, attempt)
            GROUP BY e.job_id, e.run_id ORDER BY max(e.received_at), e.job_id
            """
        ),
        {"job": job_id, "run": run_id, "since": since},
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def job_asins(conn: Connection, job_id: uuid.UUID) -> list[str]:
    row = conn.execute(text(f"SELECT asins FROM {S}.ingest_jobs WHERE id = :id"), {"id": job_id}).first()
    return list(row[0]) if row else []


# --------------------------------------------------------------------- promote


@dataclass
class Promotion:
    status: str  # promoted | duplicate | replayed
    products: int = 0
    metrics_written: int = 0
    alerts_new: int = 0
    run_closed: bool = False
    asins: list[str] = field(default_factory=list)


_PRODUCT_COLUMNS = (
    "asin",
    "title",
    "brand",
    "category",
    "breadcrumbs",
    "image_url",
    "url",
    "currency",
    "list_price",
    "updated_at",
)


#: a fresher capture rewrites the row only when one of these changed (no dead tuples for nothing)
_CONTENT = ("title", "brand", "category", "breadcrumbs", "image_url", "url", "currency", "list_price")


def _upsert_products(conn: Connection, rows: Sequence[Mapping[str, Any]], job_id: uuid.UUID | None) -> int:
    """Products from fresher captures that changed something (``updated_at`` NULL = never fetched;
    else the capture time of the last change)."""
    cols = _PRODUCT_COLUMNS
    casts = {
        "breadcrumbs": "jsonb",
        "list_price": "numeric",
        "updated_at": "timestamptz",
    }
    params: dict[str, Any] = {}
    selects = []
    for i, c in enumerate(cols):
        encode = (lambda v: None if v is None else dumps(v)) if c == "breadcrumbs" else (lambda v: v)
        params[f"p{i}"] = _arr(encode(r.get(c)) for r in rows)
        selects.append(f"CAST(:p{i} AS {casts.get(c, 'text')}[])")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "asin")
    result = conn.execute(
        text(
            f"""
            INSERT INTO {S}.products AS stored ({", ".join(cols)}, last_job_id)
            SELECT u.*, CAST(:job AS uuid) FROM unnest({", ".join(selects)}) AS u
            ON CONFLICT (asin) DO UPDATE SET {updates}, last_job_id = EXCLUDED.last_job_id
            WHERE (stored.updated_at IS NULL OR stored.updated_at < EXCLUDED.updated_at)
              AND ROW({", ".join("stored." + c for c in _CONTENT)})
                  IS DISTINCT FROM ROW({", ".join("EXCLUDED." + c for c in _CONTENT)})
            """
        ),
        {**params, "job": job_id},
    )
    return result.rowcount


_METRIC_COLUMNS = {
    "asin": "text",
    "date": "date",
    "price": "numeric",
    "currency": "text",
    "list_price": "numeric",
    "rating": "numeric",
    "reviews_count": "integer",
    "bsr": "integer",
    "bsr_category": "text",
    "in_stock": "boolean",
    "captured_at": "timestamptz",
}


def _upsert_metrics(conn: Connection, rows: Sequence[Mapping[str, Any]], job_id: uuid.UUID | None) -> int:
    """One row per (asin, day): a later capture of the day replaces an earlier one, never the reverse.

    Hand-written rather than ``bulk_upsert``: its ``RETURNING (xmax = 0)`` is refused on a
    partitioned table ("cannot retrieve a system column in this context").
    """
    cols = list(_METRIC_COLUMNS)
    params = {f"p{i}": _arr(r.get(c) for r in rows) for i, c in enumerate(cols)}
    arrays = ", ".join(f"CAST(:p{i} AS {t}[])" for i, t in enumerate(_METRIC_COLUMNS.values()))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in ("asin", "date"))
    result = conn.execute(
        text(
            f"""
            INSERT INTO {S}.product_metrics_daily AS stored ({", ".join(cols)}, job_id)
            SELECT u.*, CAST(:job AS uuid) FROM unnest({arrays}) AS u
            ON CONFLICT (asin, date) DO UPDATE SET {updates}, job_id = EXCLUDED.job_id
            WHERE stored.captured_at < EXCLUDED.captured_at
            """
        ),
        {**params, "job": job_id},
    )
    return result.rowcount


def previous_metrics(conn: Connection, asins: Sequence[str], day: date) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text(
            f"""
            SELECT m.asin, m.date, m.price, m.rating, m.bsr, m.in_stock
            FROM unnest(CAST(:a AS text[])) AS wanted(asin)
            CROSS JOIN LATERAL (
                SELECT asin, date, price, rating, bsr, in_stock FROM {S}.product_metrics_daily d
                WHERE d.asin = wanted.asin AND d.date < :d AND d.date >= :lo
                ORDER BY d.date DESC LIMIT 1
            ) m
            """
        ),
        {"a": _arr(asins), "d": day, "lo": day - timedelta(days=PREVIOUS_WINDOW_DAYS)},
    ).mappings()
    return {r["asin"]: dict(r) for r in rows}


def _insert_alerts(
    conn: Connection, alerts: Sequence[Mapping[str, Any]], job_id: uuid.UUID | None
) -> list[int]:
    if not alerts:
        return []
    cols = ("asin", "kind", "severity", "observed_date", "message")
    params = {c: _arr(a[c] for a in alerts) for c in cols}
    params["details"] = _arr(dumps(a["details"]) for a in alerts)
    rows = conn.execute(
        text(
            f"""
            INSERT INTO {S}.alerts (asin, kind, severity, observed_date, message, details, job_id)
            SELECT u.*, CAST(:job AS uuid) FROM unnest(CAST(:asin AS text[]), CAST(:kind AS text[]),
                CAST(:severity AS text[]), CAST(:observed_date AS date[]), CAST(:message AS text[]),
                CAST(:details AS jsonb[])) AS u
            ON CONFLICT ON CONSTRAINT alerts_once_per_day DO NOTHING
            RETURNING id
            """
        ),
        {**params, "job": job_id},
    ).scalars()
    return list(rows)


def promote(
    conn: Connection,
    job_id: uuid.UUID,
    run_id: uuid.UUID | None,
    items: Sequence[Normalised],
    errors: Sequence[Mapping[str, Any]],
    missing: Sequence[str],
    cost: Decimal | None,
    thresholds: Thresholds,
    now: datetime,
    *,
    replay: bool = False,
) -> Promotion:
    """Products, metrics, alerts and the job's outcome: all of it, once, or nothing."""
    status = conn.execute(
        text(f"SELECT status FROM {S}.ingest_jobs WHERE id = :id FOR UPDATE"), {"id": job_id}
    ).scalar()
    if status == "succeeded" and not replay:
        return Promotion("duplicate")
    latest: dict[str, Normalised] = {}
    for n in items:  # one row per ASIN: the latest capture wins
        seen = latest.get(n.asin)
        if seen is None or n.metric["captured_at"] >= seen.metric["captured_at"]:
            latest[n.asin] = n
    unique = list(latest.values())
    out = Promotion("replayed" if replay else "promoted", asins=sorted(latest))
    if unique:
        days = {n.metric["date"] for n in unique}
        for day in days:
            if not _partition_exists(conn, day):
                ensure_partitions(conn, day, 1)
        first_day = min(days)
        before = previous_metrics(conn, out.asins, first_day)
        out.products = _upsert_products(conn, [n.product for n in unique], job_id)
        out.metrics_written = _upsert_metrics(conn, [n.metric for n in unique], job_id)
        found = [a for n in unique for a in anomalies(before.get(n.asin), n.metric, thresholds)]
        out.alerts_new = len(_insert_alerts(conn, found, job_id))
    if not replay:
        ok = len(unique)
        conn.execute(
            text(
                f"""
                UPDATE {S}.ingest_jobs SET status = 'succeeded', finished_at = :now, items_ok = :ok,
                       items_failed = :bad, cost_usd = :cost, missing = CAST(:missing AS text[]),
                       errors = CAST(:errors AS jsonb)
                WHERE id = :id
                """
            ),
            {
                "id": job_id,
                "now": now,
                "ok": ok,
                "bad": len(errors),
                "cost": cost,
                "missing": _arr(missing),
                "errors": dumps(list(errors)[:MAX_ERRORS]),
            },
        )
        if run_id is not None:
            out.run_closed = _count_in_run(
                conn,
                run_id,
                succeeded=1,
                failed=0,
                items_ok=ok,
                items_failed=len(errors),
                cost=cost or Decimal(0),
                now=now,
            )
    return out


# ----------------------------------------------------------------------- reads


def product_summaries(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Products with their latest metric row and their five latest alerts, in one statement."""
    rows = conn.execute(
        text(
            f"""
            SELECT p.asin, p.tracked, p.title, p.brand, p.category, p.breadcrumbs, p.image_url, p.url,
                   p.currency, p.list_price, p.updated_at,
                   m.date, m.price, m.currency AS m_currency, m.list_price AS m_list_price, m.rating,
                   m.reviews_count, m.bsr, m.bsr_category, m.in_stock, m.captured_at,
                   coalesce(a.alerts, '[]'::jsonb) AS alerts
            FROM {S}.products p
            LEFT JOIN LATERAL (
                SELECT * FROM {S}.product_metrics_daily d WHERE d.asin = p.asin ORDER BY d.date DESC LIMIT 1
            ) m ON true
            LEFT JOIN LATERAL (
                SELECT jsonb_agg(jsonb_build_object('kind', x.kind, 'severity', x.severity,
                       'observed_date', x.observed_date, 'message', x.message, 'details', x.details)
                       ORDER BY x.id DESC) AS alerts
                FROM (SELECT * FROM {S}.alerts al WHERE al.asin = p.asin ORDER BY al.id DESC LIMIT 5) x
            ) a ON true
            WHERE p.asin = ANY(CAST(:a AS text[]))
            """
        ),
        {"a": _arr(asins)},
    ).mappings()
    return {r["asin"]: dict(r) for r in rows}


def metrics_range(conn: Connection, asin: str, since: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            f"""
            SELECT date, price, currency, list_price, rating, reviews_count, bsr, bsr_category, in_stock,
                   captured_at
            FROM {S}.product_metrics_daily WHERE asin = :a AND date >= :since ORDER BY date
            """
        ),
        {"a": asin, "since": since},
    ).mappings()
    return [dict(r) for r in rows]


def latest_metrics(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text(
            f"""
            SELECT p.asin, p.title, m.price, m.rating, m.reviews_count, m.bsr, m.in_stock, m.date
            FROM {S}.products p
            LEFT JOIN LATERAL (
                SELECT * FROM {S}.product_metrics_daily d WHERE d.asin = p.asin ORDER BY d.date DESC LIMIT 1
            ) m ON true
            WHERE p.asin = ANY(CAST(:a AS text[]))
            """
        ),
        {"a": _arr(asins)},
    ).mappings()
    return {r["asin"]: dict(r) for r in rows}


def exists(conn: Connection, asin: str) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {S}.products WHERE asin = :a"), {"a": asin}).first() is not None


def latest_recommendation(conn: Connection, asin: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text(
                "SELECT asin, version, generator, generated_at, report, items, trigger "
                f"FROM {S}.recommendations "
                "WHERE asin = :a ORDER BY version DESC LIMIT 1"
            ),
            {"a": asin},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def save_recommendations(conn: Connection, rows: Sequence[tuple], trigger: str, now: datetime) -> list[str]:
    """One new version per ``(asin, generator, report, items, content_hash)``, in one statement.

    The version is the latest + 1; two regenerations racing for the same version: the
    second inserts nothing for that ASIN (the primary key decides, no lock is held).
    """
    result = conn.execute(
        text(
            f"""
            INSERT INTO {S}.recommendations
                (asin, version, generator, generated_at, report, items, content_hash, trigger)
            SELECT n.asin,
                   coalesce((SELECT max(version) FROM {S}.recommendations r WHERE r.asin = n.asin), 0) + 1,
                   n.generator, :now, n.report, n.items, n.hash, :trigger
            FROM unnest(CAST(:asin AS text[]), CAST(:generator AS text[]), CAST(:report AS jsonb[]),
                        CAST(:items AS jsonb[]), CAST(:hash AS text[]))
                 AS n(asin, generator, report, items, hash)
            ON CONFLICT (asin, version) DO NOTHING
            RETURNING asin
            """
        ),
        {
            "asin": _arr(r[0] for r in rows),
            "generator": _arr(r[1] for r in rows),
            "report": _arr(dumps(r[2]) for r in rows),
            "items": _arr(dumps(r[3]) for r in rows),
            "hash": _arr(r[4] for r in rows),
            "now": now,
            "trigger": trigger,
        },
    ).scalars()
    return sorted(result)


def alerts_for(conn: Connection, asin: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            f"SELECT id, kind, severity, observed_date, message, details, created_at FROM {S}.alerts "
            "WHERE asin = :a ORDER BY id DESC LIMIT :n"
        ),
        {"a": asin, "n": limit},
    ).mappings()
    return [dict(r) for r in rows]


def run_view(conn: Connection, run_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        conn.execute(text(f"SELECT * FROM {S}.ingest_runs WHERE id = :id"), {"id": run_id}).mappings().first()
    )
    if row is None:
        return None
    jobs = conn.execute(
        text(
            "SELECT id, seq, status, attempts, cardinality(asins) AS asins, items_ok, items_failed, "
            "cost_usd, "
            f"missing, errors FROM {S}.ingest_jobs WHERE run_id = :id ORDER BY seq"
        ),
        {"id": run_id},
    ).mappings()
    return {**dict(row), "jobs": [dict(j) for j in jobs]}


def job_view(conn: Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text(
                "SELECT id, run_id, seq, status, attempts, asins, created_at, started_at, finished_at, "
                "items_ok, "
                f"items_failed, missing, cost_usd, apify_run_id, errors FROM {S}.ingest_jobs WHERE id = :id"
            ),
            {"id": job_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def ingest_totals(conn: Connection) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                f"""
            SELECT count(*) FILTER (WHERE status = 'succeeded') AS jobs_succeeded,
                   count(*) FILTER (WHERE status = 'failed') AS jobs_failed,
                   coalesce(sum(items_ok), 0) AS items_ok, coalesce(sum(items_failed), 0) AS items_failed,
                   coalesce(sum(cost_usd), 0) AS cost_usd
            FROM {S}.ingest_jobs
            """
            )
        )
        .mappings()
        .one()
    )
    last = conn.execute(
        text(f"SELECT max(finished_at) FROM {S}.ingest_runs WHERE status IN ('succeeded', 'partial')")
    ).scalar()
    return {**dict(row), "last_run_finished_at": last}
