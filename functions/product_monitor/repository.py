"""product_monitor's SQL: every write set-based.

The promotion of a job (``promote``) is ONE transaction of two statements. The first locks the
job row (``FOR UPDATE``: a duplicate delivery waits for the first, then finds the job
``succeeded`` and writes nothing) and then the job's stored products in ASIN order (a promotion
of the same ASINs that commits meanwhile is seen whole). The second writes products, metrics,
review summaries, alerts, the job and its run's counters, from ``jsonb_to_recordset``
parameters: all of it commits or none does."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, text

from opsdeck.db import array_literal
from opsdeck.jsonutil import dumps

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
    apify_reviews_run_id: str | None = None


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
            RETURNING id, run_id, asins, attempts, apify_run_id, apify_reviews_run_id
            """
        ),
        {"id": job_id, "now": now},
    ).first()
    if row is not None:
        return Job(row[0], row[1], list(row[2]), row[3], row[4], row[5])
    exists = conn.execute(text(f"SELECT status FROM {S}.ingest_jobs WHERE id = :id"), {"id": job_id}).first()
    if exists is None:
        raise LookupError(f"no ingest job {job_id}")
    return None


def record_apify_run(conn: Connection, job_id: uuid.UUID, apify_run_id: str, source: str = "product") -> None:
    column = "apify_reviews_run_id" if source == "reviews" else "apify_run_id"
    conn.execute(
        text(f"UPDATE {S}.ingest_jobs SET {column} = :r WHERE id = :id"),
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
                    'reviews_ok', r.reviews_ok,
                    'reviews_failed', r.reviews_failed,
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


def _json(value: Any) -> str:
    """JSON text of rows for ``jsonb_to_recordset`` / raw items (pydantic-core's encoder: Decimal →
    string, dates ISO; several times faster than ``json.dumps`` with a ``default``)."""
    return to_json(value, inf_nan_mode="null").decode()


#: the raw items of both sources (``:p_*`` product, ``:r_*`` reviews), one row per source with
#: items: each source's items as ONE JSON array, stored as received (``json``: validated, not
#: parsed into binary); ``staging_raw.raw_events`` is the per-item view over these rows
_RAW_INSERT = """
    INSERT INTO staging_raw.raw_batches
        (job_id, attempt, source, run_id, actor, received_at, item_count, items)
    SELECT CAST(:job AS uuid), CAST(:raw_attempt AS integer), s.source, CAST(:raw_run AS uuid), s.actor,
           CAST(:raw_at AS timestamptz), s.n, s.items
    FROM (VALUES ('product', CAST(:p_actor AS text), CAST(:p_n AS integer), CAST(:p_items AS json)),
                 ('reviews', CAST(:r_actor AS text), CAST(:r_n AS integer), CAST(:r_items AS json)))
         AS s(source, actor, n, items)
    WHERE s.n > 0
    ON CONFLICT (job_id, attempt, source) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class RawItems:
    """A job attempt's items as Apify returned them, per source, with the actors' ids."""

    attempt: int
    received_at: datetime
    product_actor: str
    product: Sequence[Any]
    reviews_actor: str
    reviews: Sequence[Any]
    #: the items' JSON text as Apify sent it (``as_received``), staged instead of encoding them again
    product_text: str | None = None
    reviews_text: str | None = None

    def params(self, run_id: uuid.UUID) -> dict[str, Any]:
        return {
            "raw_run": run_id,
            "raw_attempt": self.attempt,
            "raw_at": self.received_at,
            "p_actor": self.product_actor,
            "p_n": len(self.product),
            "p_items": self.product_text if self.product_text is not None else _json(list(self.product)),
            "r_actor": self.reviews_actor,
            "r_n": len(self.reviews),
            "r_items": self.reviews_text if self.reviews_text is not None else _json(list(self.reviews)),
        }


def as_received(body: bytes | None) -> str | None:
    """An actor's response body (a JSON array Python's ``json`` parsed) as the text to stage, or
    None to stage the parsed items encoded again: not UTF-8, a NUL byte (PostgreSQL's text
    refuses it; only a UTF-16/32 body would have one), or it may hold ``NaN`` / ``Infinity``
    (Python's ``json`` reads them, PostgreSQL's ``json`` refuses them; the encoder writes them
    as ``null``). Anything else Python's parser accepts, PostgreSQL's accepts too."""
    if body is None or b"NaN" in body or b"Infinity" in body or b"\x00" in body:
        return None
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


def write_raw(conn: Connection, job: Job, raw: RawItems) -> int:
    """Stage ``raw`` alone (the promotion stages it in its first statement; this is for when the
    promotion failed: the raw items are kept for audit and replay all the same)."""
    return conn.execute(text(_RAW_INSERT), {"job": job.id, **raw.params(job.run_id)}).rowcount


@dataclass(frozen=True, slots=True)
class RawBatch:
    job_id: uuid.UUID
    run_id: uuid.UUID
    received_at: datetime
    items: list[Any]
    reviews: list[Any]


def raw_items(
    conn: Connection,
    *,
    job_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> list[RawBatch]:
    """The latest attempt's raw items per job, product items and review items apart."""
    rows = conn.execute(
        text(
            """
            WITH latest AS (
                SELECT job_id, max(attempt) AS attempt FROM staging_raw.raw_batches
                WHERE (CAST(:job AS uuid) IS NULL OR job_id = :job)
                  AND (CAST(:run AS uuid) IS NULL OR run_id = :run)
                  AND (CAST(:since AS timestamptz) IS NULL OR received_at >= :since)
                GROUP BY job_id)
            SELECT b.job_id, b.run_id, max(b.received_at),
                   coalesce((array_agg(b.items) FILTER (WHERE b.source = 'product'))[1], '[]'),
                   coalesce((array_agg(b.items) FILTER (WHERE b.source = 'reviews'))[1], '[]')
            FROM staging_raw.raw_batches b JOIN latest l USING (job_id, attempt)
            GROUP BY b.job_id, b.run_id ORDER BY max(b.received_at), b.job_id
            """
        ),
        {"job": job_id, "run": run_id, "since": since},
    ).all()
    return [RawBatch(r[0], r[1], r[2], r[3], r[4]) for r in rows]


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
    reviews_written: int = 0
    run_closed: bool = False
    asins: list[str] = field(default_factory=list)


#: a fresher capture rewrites the product row only when one of these changed (no dead tuples);
#: the list price, which moves with the price, is a daily metric only (migration product_monitor_0005)
_CONTENT = ("title", "brand", "category", "breadcrumbs", "image_url", "url", "currency")
_PRODUCT_TYPES = {
    "asin": "text",
    "title": "text",
    "brand": "text",
    "category": "text",
    "breadcrumbs": "jsonb",
    "image_url": "text",
    "url": "text",
    "currency": "text",
    "updated_at": "timestamptz",
}
_METRIC_TYPES = {
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
_REVIEW_TYPES = {
    "asin": "text",
    "date": "date",
    "reviews_read": "integer",
    "average_rating": "numeric",
    "histogram": "integer[]",
    "verified_share": "numeric",
    "latest_review_date": "date",
    "negative": "jsonb",
    "positive": "jsonb",
    "captured_at": "timestamptz",
}
_ALERT_TYPES = {
    "asin": "text",
    "kind": "text",
    "severity": "text",
    "observed_date": "date",
    "message": "text",
    "details": "jsonb",
}


def _recordset(param: str, types: Mapping[str, str]) -> str:
    columns = ", ".join(f"{c} {t}" for c, t in types.items())
    return f"jsonb_to_recordset(CAST(:{param} AS jsonb)) AS x({columns})"


def _set(types: Mapping[str, str], key: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in types if c not in key)


#: lock the job row (a duplicate delivery waits here), then the stored products of its ASINs in
#: ASIN order (the lock the products upsert would take anyway, taken before this transaction's
#: snapshot of statement 2: a promotion of the same ASINs that commits meanwhile is seen whole,
#: its later capture included, and the order leaves no deadlock between overlapping jobs), and
#: read the previous metrics of its ASINs for the anomaly rules (only what ``domain.anomalies``
#: reads of them: not their date): one round trip; the worker's variant stages the raw items in
#: the same statement (``_STAGE_LOCK_AND_PREVIOUS``)
_LOCK_AND_PREVIOUS_SQL = f"""
    SELECT j.status, m.asin, m.price, m.rating, m.bsr, m.in_stock,
           (SELECT count(*) FROM (
                SELECT FROM {S}.products p WHERE p.asin = ANY(CAST(:asins AS text[]))
                ORDER BY p.asin FOR UPDATE) AS locked) AS products_locked
    FROM (SELECT status FROM {S}.ingest_jobs WHERE id = :job FOR UPDATE) AS j
    LEFT JOIN LATERAL (
        SELECT d.* FROM unnest(CAST(:asins AS text[])) AS wanted(asin)
        CROSS JOIN LATERAL (
            SELECT asin, date, price, rating, bsr, in_stock FROM {S}.product_metrics_daily d
            WHERE d.asin = wanted.asin AND d.date < :day AND d.date >= :lo
            ORDER BY d.date DESC LIMIT 1
        ) d
    ) AS m ON true
"""
_LOCK_AND_PREVIOUS = text(_LOCK_AND_PREVIOUS_SQL)
_STAGE_LOCK_AND_PREVIOUS = text(f"WITH raw AS ({_RAW_INSERT} RETURNING 1)\n{_LOCK_AND_PREVIOUS_SQL}")

_COLS = ", ".join
#: every write of a promotion in ONE statement (data-modifying CTEs: all run, in one snapshot;
#: a failure in any rolls back all): products (a capture that changed something, unless a later
#: capture is on record: its metric row; a capture that changed nothing does not rewrite the row,
#: so ``updated_at`` alone cannot tell that a replayed older capture is older than the latest),
#: metrics (a later capture of the day replaces an earlier one, never the reverse), review
#: summaries (likewise), alerts (once per asin, kind, day), the job's outcome and its run's
#: counters (only when ``:finish``: not for a replay)
_WRITE = text(
    f"""
    WITH p AS (
        INSERT INTO {S}.products AS stored ({_COLS(_PRODUCT_TYPES)}, last_job_id)
        SELECT {_COLS("x." + c for c in _PRODUCT_TYPES)}, CAST(:job AS uuid)
        FROM {_recordset("products", _PRODUCT_TYPES)}
        ON CONFLICT (asin) DO UPDATE SET {_set(_PRODUCT_TYPES, ("asin",))}, last_job_id = EXCLUDED.last_job_id
        WHERE (stored.updated_at IS NULL OR stored.updated_at < EXCLUDED.updated_at)
          AND ROW({_COLS("stored." + c for c in _CONTENT)})
              IS DISTINCT FROM ROW({_COLS("EXCLUDED." + c for c in _CONTENT)})
          AND NOT EXISTS (
              SELECT FROM {S}.product_metrics_daily later
              WHERE later.asin = EXCLUDED.asin
                AND later.date >= CAST(EXCLUDED.updated_at AT TIME ZONE 'UTC' AS date)
                AND later.captured_at > EXCLUDED.updated_at)
        RETURNING 1
    ), m AS (
        INSERT INTO {S}.product_metrics_daily AS stored ({_COLS(_METRIC_TYPES)}, job_id)
        SELECT {_COLS("x." + c for c in _METRIC_TYPES)}, CAST(:job AS uuid)
        FROM {_recordset("metrics", _METRIC_TYPES)}
        ON CONFLICT (asin, date) DO UPDATE
            SET {_set(_METRIC_TYPES, ("asin", "date"))}, job_id = EXCLUDED.job_id
        WHERE stored.captured_at < EXCLUDED.captured_at
        RETURNING 1
    ), r AS (
        INSERT INTO {S}.review_summaries AS stored ({_COLS(_REVIEW_TYPES)}, job_id)
        SELECT {_COLS("x." + c for c in _REVIEW_TYPES)}, CAST(:job AS uuid)
        FROM {_recordset("reviews", _REVIEW_TYPES)}
        ON CONFLICT (asin, date) DO UPDATE
            SET {_set(_REVIEW_TYPES, ("asin", "date"))}, job_id = EXCLUDED.job_id
        WHERE stored.captured_at < EXCLUDED.captured_at
        RETURNING 1
    ), a AS (
        INSERT INTO {S}.alerts ({_COLS(_ALERT_TYPES)}, job_id)
        SELECT {_COLS("x." + c for c in _ALERT_TYPES)}, CAST(:job AS uuid)
        FROM {_recordset("alerts", _ALERT_TYPES)}
        ON CONFLICT ON CONSTRAINT alerts_once_per_day DO NOTHING
        RETURNING 1
    ), j AS (
        UPDATE {S}.ingest_jobs SET status = 'succeeded', finished_at = :now, items_ok = :ok,
               items_failed = :bad, reviews_ok = :rok, reviews_failed = :rbad,
               cost_usd = CAST(:cost AS numeric),
               missing = CAST(:missing AS text[]), errors = CAST(:errors AS jsonb)
        WHERE id = :job AND :finish
        RETURNING run_id
    ), run AS (
        UPDATE {S}.ingest_runs SET jobs_succeeded = jobs_succeeded + 1, items_ok = items_ok + :ok,
               items_failed = items_failed + :bad, reviews_ok = reviews_ok + :rok,
               reviews_failed = reviews_failed + :rbad,
               cost_usd = cost_usd + coalesce(CAST(:cost AS numeric), 0)
        WHERE id = (SELECT run_id FROM j) AND id = CAST(:run AS uuid)
        RETURNING jobs_total, jobs_succeeded, jobs_failed
    )
    SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM m), (SELECT count(*) FROM a),
           (SELECT count(*) FROM r),
           coalesce((SELECT jobs_succeeded + jobs_failed >= jobs_total FROM run), false)
    """
)


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


def evaluate(
    before: Mapping[str, Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]], thresholds: Thresholds
) -> list[dict[str, Any]]:
    """The anomaly alerts of a promotion (``domain.anomalies`` per ASIN against its previous row)."""
    return [a for m in metrics for a in anomalies(before.get(m["asin"]), m, thresholds)]


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
    reviews: Sequence[Mapping[str, Any]] = (),
    reviews_failed: int = 0,
    reviews_ok: int | None = None,
    raw: RawItems | None = None,
    replay: bool = False,
) -> Promotion:
    """Products, metrics, review summaries, alerts and the job's outcome: all of it, once, or nothing.

    Two round trips whatever the batch size (the raw items staged + the job locked + the previous
    metrics read; every write), a third when the job is its run's last (the run's KPIs).
    """
    latest: dict[str, Normalised] = {}
    for n in items:  # one row per ASIN: the latest capture wins
        seen = latest.get(n.asin)
        if seen is None or n.metric["captured_at"] >= seen.metric["captured_at"]:
            latest[n.asin] = n
    # in ASIN order, as statement 1 locks them: two jobs inserting the same new rows take them in
    # the same order (no deadlock)
    unique = [latest[a] for a in sorted(latest)]
    asins = sorted(latest.keys() | {r["asin"] for r in reviews})
    days = {n.metric["date"] for n in unique} | {r["date"] for r in reviews}
    for day in days:
        if not _partition_exists(conn, day):
            ensure_partitions(conn, day, 1)
    first_day = min(days) if days else now.date()
    params = {
        "job": job_id,
        "asins": _arr(latest) if unique else "{}",
        "day": first_day,
        "lo": first_day - timedelta(days=PREVIOUS_WINDOW_DAYS),
    }
    if raw is not None:
        rows = conn.execute(_STAGE_LOCK_AND_PREVIOUS, {**params, **raw.params(run_id)}).all()  # type: ignore[arg-type]
    else:
        rows = conn.execute(_LOCK_AND_PREVIOUS, params).all()
    status = rows[0][0] if rows else None
    if status == "succeeded" and not replay:
        return Promotion("duplicate")
    before = {
        r[1]: {"asin": r[1], "price": r[2], "rating": r[3], "bsr": r[4], "in_stock": r[5]}
        for r in rows
        if r[1] is not None
    }
    metrics = [n.metric for n in unique]
    found = evaluate(before, metrics, thresholds)
    out = Promotion("replayed" if replay else "promoted", asins=asins)
    row = conn.execute(
        _WRITE,
        {
            "job": job_id,
            "run": run_id,
            "finish": not replay,
            "products": _json([n.product for n in unique]),
            "metrics": _json(metrics),
            "reviews": _json(list(reviews)),
            "alerts": _json(found),
            "now": now,
            "ok": len(unique),
            "bad": len(errors) - reviews_failed,
            "rok": len(reviews) if reviews_ok is None else reviews_ok,
            "rbad": reviews_failed,
            "cost": cost,
            "missing": _arr(missing),
            "errors": _json(list(errors)[:MAX_ERRORS]),
        },
    ).one()
    out.products, out.metrics_written, out.alerts_new, out.reviews_written = row[0], row[1], row[2], row[3]
    if row[4]:
        close_run(conn, run_id, now)  # type: ignore[arg-type]
        out.run_closed = True
    return out


# ----------------------------------------------------------------------- reads


def product_summaries(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Products with their latest metric row and their five latest alerts, in one statement."""
    rows = conn.execute(
        text(
            f"""
            SELECT p.asin, p.tracked, p.title, p.brand, p.category, p.breadcrumbs, p.image_url, p.url,
                   p.currency, p.updated_at,
                   m.date, m.price, m.currency AS m_currency, m.list_price AS m_list_price, m.rating,
                   m.reviews_count, m.bsr, m.bsr_category, m.in_stock, m.captured_at,
                   coalesce(a.alerts, '[]'::jsonb) AS alerts, rv.reviews
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
            LEFT JOIN LATERAL (
                SELECT {_REVIEW_JSON} AS reviews
                FROM {S}.review_summaries rs WHERE rs.asin = p.asin ORDER BY rs.date DESC LIMIT 1
            ) rv ON true
            WHERE p.asin = ANY(CAST(:a AS text[]))
            """
        ),
        {"a": _arr(asins)},
    ).mappings()
    return {r["asin"]: dict(r) for r in rows}


#: a review summary row as the API shows it (numbers as text, like the metrics' money)
_REVIEW_JSON = """jsonb_build_object('date', rs.date, 'reviews_read', rs.reviews_read,
                       'average_rating', rs.average_rating::text, 'histogram', to_jsonb(rs.histogram),
                       'verified_share', rs.verified_share::text,
                       'latest_review_date', rs.latest_review_date, 'negative', rs.negative,
                       'positive', rs.positive, 'captured_at', rs.captured_at)"""


def latest_review_summaries(conn: Connection, asins: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest review summary of each of ``asins`` that has one (for the reports' rules)."""
    rows = conn.execute(
        text(
            f"""
            SELECT DISTINCT ON (asin) asin, date, reviews_read, average_rating, histogram, verified_share,
                   negative
            FROM {S}.review_summaries WHERE asin = ANY(CAST(:a AS text[])) ORDER BY asin, date DESC
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
            "reviews_ok, reviews_failed, cost_usd, "
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
                "items_ok, items_failed, reviews_ok, reviews_failed, missing, cost_usd, apify_run_id, "
                f"apify_reviews_run_id, errors FROM {S}.ingest_jobs WHERE id = :id"
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
                   coalesce(sum(reviews_ok), 0) AS reviews_ok,
                   coalesce(sum(reviews_failed), 0) AS reviews_failed,
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
