"""``backoffice-consumer``: OLTP change events from SQS ``backoffice-changes`` into the read store.

Thin entry point: ``opsdeck.queue.consume`` validates every record with ``changes.CHANGE`` (a bad one
becomes a ``batchItemFailure`` with its reason logged, and reaches ``backoffice-changes-dlq``
after ``maxReceiveCount`` receives), applies the valid ones through ``sync.apply_changes`` in
one transaction (bisecting when the database refuses a record), and the invocation's metrics
are emitted once: written, skipped (duplicates/stale), invalid, version missing, consumer lag,
pairs completed/incomplete, oldest incomplete pair age.
"""

from __future__ import annotations

from typing import Any

from opsdeck.lazy import lazy_import
from opsdeck.observability import entry
from opsdeck.queue import consume

from .changes import CHANGE

sync = lazy_import("functions.backoffice.sync")  # SQLAlchemy and the tables load with the first batch


@entry("queue")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    applier = sync.Applier()
    result = consume(event, CHANGE, applier)
    applier.stats.emit(invalid=len(result["batchItemFailures"]))
    return result
