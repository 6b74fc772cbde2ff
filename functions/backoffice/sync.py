"""The one apply path of the read store: the queue consumer and the backfill both call it.

``apply_changes(conn, changes, now=)`` writes a batch of validated changes inside the caller's
transaction (``opsdeck.queue.consume`` gives it one, and bisects when the database refuses a
record):

1. rows of each table are built from the change images with their LWW key
   (``changes.py``) and written with ONE ``opsdeck.db.bulk_upsert`` per table, sorted by key
   (concurrent consumers lock rows in the same order). The version guard
   ``(stored key) < (incoming key)`` makes a duplicate or an older change a no-op, whatever the
   arrival order; deletes write tombstones (``deleted_at``) that obey the same guard;
2. ``bo.payment_ledger_pairs`` is recomputed from the live entries for every payment order
   whose legs were written (their old and new ``related_id``). The pair rows are locked
   first (one statement, in key order), so two consumers writing
   the two legs of one order concurrently serialise there, and the second one's recompute
   sees both legs: pairs converge in any arrival order and under concurrency;
3. ``bo.sync_state`` keeps the newest commit time applied per source table (``data_lag_sec``)
   and returns the age of the oldest incomplete pair (a gauge, from a partial index).

The statements per batch do not depend on its size: 6 round trips for 10 or 10,000 records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from opsdeck.db import array_literal, bulk_upsert
from opsdeck.observability import metric

from .changes import RANK_INGESTION, RANK_POSITION, Change, image, order_key, utc_from_ms
from .tables import LWW_KEY, ledger_entries, payment_orders

if TYPE_CHECKING:
    from sqlalchemy import Connection

LEDGER_COLUMNS = tuple(c.name for c in ledger_entries.columns)
ORDER_COLUMNS = tuple(c.name for c in payment_orders.columns)


@dataclass
class Stats:
    """What one or more applied batches did (only batches whose transaction went through)."""

    received: int = 0
    written: int = 0
    skipped: int = 0  # duplicates and stale (older) changes
    version_missing: int = 0  # changes ordered without a row version (rank 1 or 0)
    by_ingestion_time: int = 0  # ... and without a source position either (rank 0)
    max_lag_ms: float | None = None  # now - source.ts_ms, the oldest change of the batch
    pairs_completed: int = 0
    pairs_incomplete: int = 0
    oldest_incomplete_pair_s: float | None = None

    def add(self, other: Stats) -> None:
        for name in ("received", "written", "skipped", "version_missing", "by_ingestion_time"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.pairs_completed += other.pairs_completed
        self.pairs_incomplete += other.pairs_incomplete
        if other.max_lag_ms is not None:
            self.max_lag_ms = max(self.max_lag_ms or 0.0, other.max_lag_ms)
        if other.oldest_incomplete_pair_s is not None:
            self.oldest_incomplete_pair_s = other.oldest_incomplete_pair_s

    def emit(self, *, invalid: int = 0) -> None:
        """Metrics of the invocation (``opsdeck.observability.metric``)."""
        metric("ChangesWritten", self.written)
        metric("ChangesSkipped", self.skipped)
        if invalid:
            metric("ChangesInvalid", invalid)
        if self.version_missing:
            metric("VersionMissing", self.version_missing)
        if self.by_ingestion_time:
            metric("OrderedByIngestionTime", self.by_ingestion_time)
        if self.max_lag_ms is not None:
            metric("ConsumerLag", round(self.max_lag_ms, 1), "Milliseconds")
        if self.pairs_completed:
            metric("PairsCompleted", self.pairs_completed)
        if self.pairs_incomplete:
            metric("PairsIncomplete", self.pairs_incomplete)
        if self.oldest_incomplete_pair_s is not None:
            metric("OldestIncompletePairAge", round(self.oldest_incomplete_pair_s, 1), "Seconds")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


# ----------------------------------------------------------------- row building


def _row(change: Change, ingested_ms: int, now: datetime, stats: Stats) -> dict[str, Any]:
    """The stored row of a change: its image plus the LWW key and sync columns."""
    rank, major, minor, tomb = order_key(change, ingested_ms)
    delete = change["op"] == "d"
    if not delete and rank <= RANK_POSITION:
        stats.version_missing += 1
        if rank == RANK_INGESTION:
            stats.by_ingestion_time += 1
    source = change["source"]
    ts_ms = source.get("ts_ms")
    source_ts = utc_from_ms(ts_ms)
    row = image(change)
    row["source_ts"] = source_ts
    row["source_lsn"] = source.get("lsn")
    row["lww_rank"] = rank
    row["lww_major"] = major
    row["lww_minor"] = minor
    row["lww_tomb"] = tomb
    row["synced_at"] = now
    row["deleted_at"] = (source_ts or now) if delete else None
    return row


# ------------------------------------------------------------------- statements

_OLD_RELATED = text(
    "SELECT tx_id, related_id FROM bo.ledger_entries "
    "WHERE tx_id = ANY(CAST(:ids AS text[])) AND related_id IS NOT NULL"
)

# Lock the pair rows of these orders, in key order, before recomputing them: a placeholder row
# for a new order (a concurrent insert of the same key waits for our commit), and for an existing
# one ``DO UPDATE … WHERE false``, which locks the row without writing a new version of it.
_PAIR_LOCK = text(
    """
    INSERT INTO bo.payment_ledger_pairs AS stored
        (payment_order_id, payment_legs, receive_legs, pairing_status, first_seen_at, updated_at)
    SELECT id, 0, 0, 'INCOMPLETE', :now, :now
    FROM (SELECT DISTINCT id FROM unnest(CAST(:ids AS text[])) AS t(id)) AS ids
    ORDER BY id
    ON CONFLICT (payment_order_id) DO UPDATE SET updated_at = stored.updated_at WHERE false
    """
)
# A new statement (a new READ COMMITTED snapshot) after the locks: it sees every leg committed
# by whoever held them before us.
_PAIR_RECOMPUTE = text(
    """
    WITH ids AS (
        SELECT DISTINCT id FROM unnest(CAST(:ids AS text[])) AS t(id)
    ), legs AS (
        SELECT ids.id,
               count(*) FILTER (WHERE e.type = 'PAYMENT') AS payment_legs,
               count(*) FILTER (WHERE e.type = 'RECEIVE') AS receive_legs,
               min(e.tx_id) FILTER (WHERE e.type = 'PAYMENT') AS payment_tx_id,
               min(e.tx_id) FILTER (WHERE e.type = 'RECEIVE') AS receive_tx_id
        FROM ids JOIN bo.ledger_entries e ON e.related_id = ids.id
        WHERE e.deleted_at IS NULL
          AND e.type IN ('PAYMENT', 'RECEIVE')
          AND coalesce(e.related_type, 'PAYMENT_ORDER') = 'PAYMENT_ORDER'
        GROUP BY ids.id
    ), computed AS (
        SELECT legs.*,
               CASE WHEN legs.payment_legs = 1 AND legs.receive_legs = 1 THEN 'COMPLETE'
                    WHEN legs.payment_legs > 1 OR legs.receive_legs > 1 THEN 'UNKNOWN'
                    ELSE 'INCOMPLETE' END AS pairing_status,
               old.pairing_status AS old_status,
               old.payment_legs + old.receive_legs AS old_legs
        FROM legs LEFT JOIN bo.payment_ledger_pairs old ON old.payment_order_id = legs.id
    ), removed AS (
        DELETE FROM bo.payment_ledger_pairs p USING ids
        WHERE p.payment_order_id = ids.id AND NOT EXISTS (SELECT 1 FROM legs WHERE legs.id = ids.id)
        RETURNING p.payment_order_id
    ), written AS (
        INSERT INTO bo.payment_ledger_pairs AS stored
            (payment_order_id, payment_tx_id, receive_tx_id, payment_legs, receive_legs,
             pairing_status, first_seen_at, completed_at, updated_at)
        SELECT id, payment_tx_id, receive_tx_id, payment_legs, receive_legs, pairing_status,
               :now, CASE WHEN pairing_status = 'COMPLETE' THEN CAST(:now AS timestamptz) END, :now
        FROM computed
        ON CONFLICT (payment_order_id) DO UPDATE SET
            payment_tx_id = EXCLUDED.payment_tx_id,
            receive_tx_id = EXCLUDED.receive_tx_id,
            payment_legs = EXCLUDED.payment_legs,
            receive_legs = EXCLUDED.receive_legs,
            pairing_status = EXCLUDED.pairing_status,
            first_seen_at = CASE WHEN stored.payment_legs + stored.receive_legs = 0
                                 THEN EXCLUDED.first_seen_at ELSE stored.first_seen_at END,
            completed_at = CASE WHEN EXCLUDED.pairing_status = 'COMPLETE'
                                THEN coalesce(stored.completed_at, EXCLUDED.completed_at) END,
            updated_at = EXCLUDED.updated_at
        WHERE (stored.payment_tx_id, stored.receive_tx_id, stored.payment_legs, stored.receive_legs,
               stored.pairing_status)
              IS DISTINCT FROM (EXCLUDED.payment_tx_id, EXCLUDED.receive_tx_id, EXCLUDED.payment_legs,
                                EXCLUDED.receive_legs, EXCLUDED.pairing_status)
        RETURNING 1
    )
    SELECT
        (SELECT count(*) FROM computed
          WHERE pairing_status = 'COMPLETE' AND old_status IS DISTINCT FROM 'COMPLETE') AS completed,
        (SELECT count(*) FROM computed WHERE pairing_status = 'INCOMPLETE') AS incomplete,
        (SELECT count(*) FROM written) AS written,
        (SELECT count(*) FROM removed) AS removed
    """
)
_SYNC_STATE = text(
    """
    INSERT INTO bo.sync_state AS stored (stream, last_source_ts, last_applied_at)
    SELECT * FROM unnest(CAST(:streams AS text[]), CAST(:source_ts AS timestamptz[]),
                         CAST(:applied AS timestamptz[]))
    ON CONFLICT (stream) DO UPDATE SET
        last_source_ts = GREATEST(stored.last_source_ts, EXCLUDED.last_source_ts),
        last_applied_at = GREATEST(stored.last_applied_at, EXCLUDED.last_applied_at)
    RETURNING (SELECT min(first_seen_at) FROM bo.payment_ledger_pairs
               WHERE pairing_status = 'INCOMPLETE') AS oldest_incomplete
    """
)


# ------------------------------------------------------------------- apply path


def apply_changes(
    conn: Connection, changes: Sequence[tuple[int, Change]], *, now: datetime | None = None
) -> Stats:
    """Write ``[(ingested_ms, change), ...]`` in the caller's transaction; returns what happened."""
    now = now or datetime.now(UTC)
    stats = Stats(received=len(changes))
    by_table: dict[str, list[dict[str, Any]]] = {"ledger_entries": [], "payment_orders": []}
    newest: dict[str, int] = {}  # per table, the newest source.ts_ms
    oldest_ms: int | None = None
    for ingested_ms, change in changes:
        table = change["source"]["table"]
        by_table[table].append(_row(change, ingested_ms, now, stats))
        ts_ms = change["source"].get("ts_ms")
        if ts_ms is not None:
            if ts_ms > newest.get(table, -1):
                newest[table] = ts_ms
            if oldest_ms is None or ts_ms < oldest_ms:
                oldest_ms = ts_ms
    if oldest_ms is not None:  # consumer lag: now - source.ts_ms of the oldest change
        stats.max_lag_ms = now.timestamp() * 1000 - oldest_ms

    affected: set[str] = set()
    ledger = sorted(by_table["ledger_entries"], key=itemgetter("tx_id"))
    if ledger:
        # the order an entry belonged to before this batch: moving an entry changes both pairs
        old = dict(conn.execute(_OLD_RELATED, {"ids": array_literal({r["tx_id"] for r in ledger})}).all())
        result = bulk_upsert(
            conn,
            ledger_entries,
            ledger,
            key=("tx_id",),
            columns=LEDGER_COLUMNS,
            version=LWW_KEY,
            returning=("tx_id", "related_id"),
        )
        stats.written += result.written
        stats.skipped += result.skipped
        for row in result.rows:  # only entries actually written
            affected.update(r for r in (row.related_id, old.get(row.tx_id)) if r is not None)
    orders = sorted(by_table["payment_orders"], key=itemgetter("order_id"))
    if orders:
        result = bulk_upsert(
            conn, payment_orders, orders, key=("order_id",), columns=ORDER_COLUMNS, version=LWW_KEY
        )
        stats.written += result.written
        stats.skipped += result.skipped

    if affected:
        ids = sorted(affected)
        conn.execute(_PAIR_LOCK, {"ids": array_literal(ids), "now": now})
        pairs = conn.execute(_PAIR_RECOMPUTE, {"ids": array_literal(ids), "now": now}).one()
        stats.pairs_completed += pairs.completed
        stats.pairs_incomplete += pairs.incomplete

    streams = sorted(t for t, rows in by_table.items() if rows)
    if streams:
        oldest = conn.execute(
            _SYNC_STATE,
            {
                "streams": streams,
                "source_ts": [utc_from_ms(newest.get(s)) for s in streams],
                "applied": [now] * len(streams),
            },
        ).scalar()
        if oldest is not None:
            stats.oldest_incomplete_pair_s = max(0.0, (now - oldest).total_seconds())
    return stats


class Applier:
    """``apply_batch`` for ``opsdeck.queue.consume``/``apply_records``, one per invocation.

    Ingestion time of a record is its SQS ``SentTimestamp`` (the backfill sets it per chunk).
    ``stats`` only counts sub-batches that were applied (bisection retries halves).
    """

    def __init__(self) -> None:
        self.stats = Stats()

    def __call__(self, conn: Connection, items: list[tuple[dict[str, Any], Change]]) -> None:
        now_ms = int(time.time() * 1000)
        changes = [(ingested_ms(record, now_ms), change) for record, change in items]
        self.stats.add(apply_changes(conn, changes))


def ingested_ms(record: dict[str, Any], default: int) -> int:
    try:
        return int(record["attributes"]["SentTimestamp"])
    except (KeyError, TypeError, ValueError):
        return default
