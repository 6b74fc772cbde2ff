"""``snacks-reactions-flush`` (every minute): Redis reaction counts → the statistics columns.

1. If Redis lost its data (no ``epoch`` key), or the last full reconciliation is older than
   ``SNACKS_RECONCILE_EVERY_S`` (3600), reconcile every snack: lock all snack rows, count the
   reaction table, write PostgreSQL and Redis, set the epoch.
2. Reconcile the snacks whose hash went missing (a request found no hash to increment).
3. Flush the dirty snacks: their Redis counts into ``like_count`` / ``hate_count`` (one
   set-based UPDATE per chunk).

``{"reconcile": "all"}`` as input forces step 1. Reserved concurrency 1: two flushes never race.
No FastAPI here; SQLAlchemy only on use.
"""

from __future__ import annotations

import os
import time
from typing import Any

from opsdeck import db
from opsdeck.observability import entry, logger

from . import counters

CHUNK = 1000


def reconcile(snack_ids: list[int] | None) -> int:
    """Exact counts for ``snack_ids`` (all when ``None``) into PostgreSQL and Redis."""
    from . import repository

    with db.transaction() as conn:
        values = repository.lock_and_count(conn, snack_ids)
        repository.write_counts(conn, values)
        counters.store(values, epoch=str(int(time.time())) if snack_ids is None else None)
    return len(values)


def flush_dirty() -> int:
    from . import repository

    flushed = 0
    while True:
        ids = counters.take(counters.DIRTY, CHUNK)
        if not ids:
            return flushed
        try:
            live = counters.hashes(ids)
            lost = [i for i in ids if i not in live]
            with db.transaction() as conn:
                repository.write_counts(conn, [(i, *live[i]) for i in ids if i in live])
                if lost:
                    lost = repository.existing_snack_ids(conn, lost)
            counters.put_back(counters.MISSING, lost)
        except Exception:
            counters.put_back(counters.DIRTY, ids)  # flushed next time
            raise
        flushed += len(ids)


def run(event: dict[str, Any] | None = None) -> dict[str, Any]:
    event = event or {}
    result: dict[str, Any] = {"reconciled_all": False, "reconciled": 0, "flushed": 0}
    last = counters.epoch()
    every = float(os.environ.get("SNACKS_RECONCILE_EVERY_S", "3600"))
    if event.get("reconcile") == "all" or last is None or time.time() - last >= every:
        result["reconciled_all"] = True
        result["reconciled"] = reconcile(None)
    while True:
        missing = counters.take(counters.MISSING, CHUNK)
        if not missing:
            break
        try:
            result["reconciled"] += reconcile(missing)
        except Exception:
            counters.put_back(counters.MISSING, missing)
            raise
    result["flushed"] = flush_dirty()
    logger.info("reaction counts flushed", extra=result)
    return result


@entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event.get("detail") if isinstance(event.get("detail"), dict) else event)
