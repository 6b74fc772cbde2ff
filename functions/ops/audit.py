"""Who did what from the ops console: ``ops.audit`` (migration ops_0002) + one log line each.

``begin`` writes the row *before* the action runs (outcome NULL) — if the audit cannot be
written, the action is refused (``Unavailable``, 503), so nothing is done unrecorded; ``finish``
sets the outcome (``ok`` or the problem's type slug) and a short result.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from opsdeck import db
from opsdeck.auth import Principal
from opsdeck.observability import logger

#: SQLAlchemy loads on the first action, not with the handler (~0.3 s of cold start otherwise)
_SQL = {
    "begin": (
        "INSERT INTO ops.audit (subject, roles, action, target, params, request_id, source_ip) "
        "VALUES (:subject, CAST(:roles AS text[]), :action, :target, CAST(:params AS jsonb), :request_id, "
        ":source_ip) RETURNING id"
    ),
    "finish": "UPDATE ops.audit SET outcome = :outcome, result = CAST(:result AS jsonb) WHERE id = :id",
    "recent": (
        "SELECT id, at, subject, roles, action, target, params, outcome, result, request_id, source_ip "
        "FROM ops.audit ORDER BY id DESC LIMIT :limit"
    ),
}


@cache
def _statement(name: str):
    from sqlalchemy import text

    return text(_SQL[name])


def begin(
    principal: Principal,
    action: str,
    target: str,
    params: dict[str, Any],
    *,
    request_id: str,
    source_ip: str | None,
) -> int:
    roles = db.array_literal(sorted(principal.roles))
    with db.transaction() as conn:
        audit_id = conn.execute(
            _statement("begin"),
            {
                "subject": principal.subject,
                "roles": roles,
                "action": action,
                "target": target,
                "params": json.dumps(params, default=str),
                "request_id": request_id,
                "source_ip": source_ip,
            },
        ).scalar_one()
    logger.info(
        "ops action",
        extra={"audit_id": audit_id, "subject": principal.subject, "action": action, "target": target},
    )
    return int(audit_id)


def finish(audit_id: int, outcome: str, result: Any = None) -> None:
    payload = json.dumps(result, default=str)
    if len(payload) > 8000:
        payload = json.dumps({"truncated": True})
    with db.transaction() as conn:
        conn.execute(_statement("finish"), {"id": audit_id, "outcome": outcome, "result": payload})
    logger.info("ops action done", extra={"audit_id": audit_id, "outcome": outcome})


def recent(limit: int) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        rows = conn.execute(_statement("recent"), {"limit": limit}).mappings().all()
    return [
        {**dict(r), "at": r["at"].isoformat().replace("+00:00", "Z"), "roles": list(r["roles"] or [])}
        for r in rows
    ]
