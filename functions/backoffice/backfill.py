"""``backoffice-backfill``: a chunk of snapshot rows through the consumer's own apply path.

Invoked on demand (``Manual`` trigger) — by ``opsdeck backoffice backfill FILE --function NAME``,
which sends a JSONL snapshot in chunks, or by ``aws lambda invoke``. The event::

    {"changes": [<change envelope, usually op "r"> | "<the JSONL line>", ...], "offset": 0}

Each change is validated and applied exactly as a queue record would be
(``opsdeck.queue.apply_records`` + ``sync.Applier``: one transaction, bisection around rows the
database refuses, the same LWW guard), so re-running a backfill, or running it while the
consumer is live, is harmless: older or equal changes are skipped. The answer counts what
happened and lists invalid lines by number (``offset`` + position, 1-based).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from opsdeck.errors import InvalidInput
from opsdeck.lazy import lazy_import
from opsdeck.observability import entry
from opsdeck.queue import apply_records

from .changes import CHANGE

sync = lazy_import("functions.backoffice.sync")  # SQLAlchemy and the tables load with the first chunk

MAX_CHANGES_PER_INVOCATION = 20_000


def apply_chunk(changes: Sequence[Any], *, offset: int = 0) -> tuple[dict[str, Any], sync.Applier]:
    """Validate and apply ``changes``; returns the summary and the applier (with its stats)."""
    sent_ms = str(int(time.time() * 1000))
    records = [
        {
            "messageId": str(offset + i + 1),
            "body": change if isinstance(change, str) else json.dumps(change, separators=(",", ":")),
            "attributes": {"SentTimestamp": sent_ms},
        }
        for i, change in enumerate(changes)
    ]
    applier = sync.Applier()
    outcome = apply_records(records, CHANGE, applier)
    invalid = sorted(
        ({"line": int(k), "reason": v} for k, v in outcome.failures.items()), key=lambda x: x["line"]
    )
    stats = applier.stats
    summary = {
        "received": len(records),
        "applied": len(outcome.applied),
        "written": stats.written,
        "skipped": stats.skipped,
        "invalid": invalid,
        "pairs_completed": stats.pairs_completed,
    }
    return summary, applier


@entry("manual")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    changes = event.get("changes") if isinstance(event, dict) else None
    if not isinstance(changes, list):
        raise InvalidInput('the event must be {"changes": [...], "offset": n}')
    if len(changes) > MAX_CHANGES_PER_INVOCATION:
        raise InvalidInput(f"at most {MAX_CHANGES_PER_INVOCATION} changes per invocation")
    offset = event.get("offset", 0)
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer")
    summary, applier = apply_chunk(changes, offset=offset)
    applier.stats.emit(invalid=len(summary["invalid"]))
    return summary
