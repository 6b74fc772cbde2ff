"""The progress of the console's DLQ replays: ``ops.replays`` (migration ops_0003).

The page chooses a replay id (a UUID) and POSTs the replay with it; the ``ops-api`` invocation
that runs it writes ``opsdeck.replay``'s progress reports here (``Recorder``),
and ``GET /ops/replays/{replay_id}`` — which on Lambda another instance answers, so nothing is
kept in memory — reads them back while the POST is still running.

* ``start`` inserts the row; a replay id already used is a ``Conflict`` (the primary key
  decides, not a read before the write).
* ``Recorder`` is the progress callback: one ``UPDATE`` per report (``opsdeck.replay`` reports
  at most every 0.25 s: a write after every batch of 10 cost a fast local replay ~70 %).
  Progress is best effort: a write that fails is logged and the replay goes on — its outcome is
  recorded by ``finish`` and by ``ops.audit`` either way.
* ``finish`` sets ``done``, the outcome (``ok`` or the problem's type slug) and the result.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from opsdeck import db
from opsdeck.errors import Conflict, NotFound
from opsdeck.observability import logger

#: without a report for this long, a replay that is not done has stopped (its invocation ended)
STALLED_AFTER_S = 60

_SQL = {
    "start": (
        "INSERT INTO ops.replays (replay_id, audit_id, dlq, params) "
        "VALUES (CAST(:replay_id AS uuid), :audit_id, :dlq, CAST(:params AS jsonb)) "
        "ON CONFLICT (replay_id) DO NOTHING RETURNING replay_id"
    ),
    "record": (
        "UPDATE ops.replays SET progress = CAST(:progress AS jsonb), updated_at = now() "
        "WHERE replay_id = CAST(:replay_id AS uuid) AND NOT done"
    ),
    "finish": (
        "UPDATE ops.replays SET done = true, outcome = :outcome, result = CAST(:result AS jsonb), "
        "progress = COALESCE(CAST(:progress AS jsonb), progress), updated_at = now() "
        "WHERE replay_id = CAST(:replay_id AS uuid)"
    ),
    "get": (
        "SELECT replay_id, audit_id, dlq, params, started_at, updated_at, progress, done, outcome, result, "
        "now() - updated_at > make_interval(secs => :stalled) AS stalled "
        "FROM ops.replays WHERE replay_id = CAST(:replay_id AS uuid)"
    ),
}

#: the counters of a progress report, 0 until the first one
COUNTS = ("total", "examined", "matched", "moved", "skipped", "failed")


@cache
def _statement(name: str):
    from sqlalchemy import text

    return text(_SQL[name])


def start(replay_id: str, audit_id: int, dlq: str, params: dict[str, Any]) -> None:
    with db.transaction() as conn:
        inserted = conn.execute(
            _statement("start"),
            {
                "replay_id": replay_id,
                "audit_id": audit_id,
                "dlq": dlq,
                "params": json.dumps(params, default=str),
            },
        ).first()
    if inserted is None:
        raise Conflict(f"replay id {replay_id} is already used: choose a new one for each replay")


class Recorder:
    """``opsdeck.replay``'s ``progress`` callback for one replay: stores each report."""

    def __init__(self, replay_id: str) -> None:
        self.replay_id = replay_id
        self.last: dict[str, Any] | None = None

    def __call__(self, progress: dict[str, Any]) -> None:
        self.last = progress
        try:
            with db.transaction() as conn:
                conn.execute(
                    _statement("record"),
                    {"replay_id": self.replay_id, "progress": json.dumps(progress, default=str)},
                )
        except Exception as exc:  # best effort: the replay itself must go on
            logger.warning(
                "replay progress not stored", extra={"replay_id": self.replay_id, "error": type(exc).__name__}
            )


def finish(replay_id: str, outcome: str, result: Any = None, progress: dict[str, Any] | None = None) -> None:
    with db.transaction() as conn:
        conn.execute(
            _statement("finish"),
            {
                "replay_id": replay_id,
                "outcome": outcome,
                "result": json.dumps(result, default=str),
                "progress": None if progress is None else json.dumps(progress, default=str),
            },
        )


def get(replay_id: str) -> dict[str, Any]:
    """What ``GET /ops/replays/{replay_id}`` answers (``models.ReplayProgress``)."""
    with db.transaction() as conn:
        row = (
            conn.execute(_statement("get"), {"replay_id": replay_id, "stalled": STALLED_AFTER_S})
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no replay {replay_id}")
    progress = dict(row["progress"] or {})
    result = row["result"] if isinstance(row["result"], dict) else None
    error = progress.get("error")
    if row["outcome"] not in (None, "ok") and not error:
        error = (result or {}).get("detail") or row["outcome"]
    return {
        "replay_id": str(row["replay_id"]),
        "dlq": row["dlq"],
        "params": row["params"] or {},
        "audit_id": row["audit_id"],
        "started_at": _iso(row["started_at"]),
        "updated_at": _iso(row["updated_at"]),
        "method": progress.get("method"),
        "dry_run": bool(progress.get("dry_run", (row["params"] or {}).get("dry_run", False))),
        **{name: int(progress.get(name) or 0) for name in COUNTS},
        "message_ids": list(progress.get("message_ids") or []),
        "stopped": progress.get("stopped"),
        "done": bool(row["done"]),
        "stalled": bool(row["stalled"]) and not row["done"],
        "outcome": row["outcome"],
        "error": error,
        "result": result if row["outcome"] == "ok" else None,
    }


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")
