"""``backoffice-audit-retention`` through its entry point (handler + the sample scheduled event)
and through the local cloud's schedule, as the backoffice runtime role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from functions.backoffice import retention
from opsdeck.errors import ConfigError, InvalidInput
from tests.support import LambdaContext, load_event

EVENT = "backoffice-audit-retention/scheduled.json"


def audit_rows(conn: Any, *ages_days: float) -> None:
    now = datetime.now(UTC)
    for i, age in enumerate(ages_days):
        conn.execute(
            text(
                "INSERT INTO bo.admin_audit (at, actor, action, target_type, outcome, status, result_count) "
                "VALUES (:at, :actor, 'tx.lookup', 'tx', 'allowed', 200, 1)"
            ),
            {"at": now - timedelta(days=age), "actor": f"admin-{i}"},
        )


def remaining_ages(conn: Any) -> list[int]:
    rows = conn.execute(text("SELECT round(extract(epoch FROM now() - at) / 86400) FROM bo.admin_audit"))
    return sorted(int(r[0]) for r in rows)


class ShortOnTime(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return retention.STOP_WITH_MS - 1


def test_rows_older_than_the_retention_go_in_bounded_batches(db, monkeypatch):
    audit_rows(db, 1, 30, 399, 401, 402, 500, 800, 900, 1000, 1200)
    monkeypatch.setenv("AUDIT_PURGE_BATCH", "3")
    result = retention.handler(load_event(EVENT), LambdaContext("backoffice-audit-retention", 300))
    assert result["deleted"] == 7
    assert result["batches"] == 3  # 3 + 3 + 1: the short batch ends the run
    assert result["complete"] is True
    assert result["retention_days"] == 400
    assert remaining_ages(db) == [1, 30, 399]
    again = retention.handler(load_event(EVENT), LambdaContext("backoffice-audit-retention", 300))
    assert (again["deleted"], again["batches"], again["complete"]) == (0, 1, True)


def test_a_run_short_on_time_stops_after_a_batch_and_says_so(db, monkeypatch):
    audit_rows(db, 500, 501, 502, 503)
    monkeypatch.setenv("AUDIT_PURGE_BATCH", "2")
    result = retention.handler(load_event(EVENT), ShortOnTime("backoffice-audit-retention"))
    assert (result["deleted"], result["batches"], result["complete"]) == (2, 1, False)
    assert len(remaining_ages(db)) == 2


def test_retention_is_configurable_and_refuses_a_dangerous_value(db, monkeypatch):
    audit_rows(db, 10, 40, 100)
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "60")
    assert retention.handler(load_event(EVENT), LambdaContext())["deleted"] == 1
    assert remaining_ages(db) == [10, 40]
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "5")  # would wipe the audit trail: refused
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        retention.handler(load_event(EVENT), LambdaContext())
    assert remaining_ages(db) == [10, 40]


def test_a_one_off_retention_in_the_event_detail(db):
    audit_rows(db, 10, 40, 100)
    event = {**load_event(EVENT), "detail": {"retention_days": 35}}
    assert retention.handler(event, LambdaContext())["deleted"] == 2
    with pytest.raises(InvalidInput):
        retention.handler({**event, "detail": {"retention_days": 1}}, LambdaContext())


def test_the_daily_schedule_purges_in_the_local_cloud(local_cloud):
    from opsdeck import db

    with db.transaction() as conn:
        audit_rows(conn, 3, 450)
    result = local_cloud.fire("backoffice-audit-retention")
    assert (result["deleted"], result["complete"]) == (1, True)
    [entry] = [j for j in local_cloud.journal() if j["function"] == "backoffice-audit-retention"]
    assert entry["outcome"] == "ok"
    with db.transaction() as conn:
        assert remaining_ages(conn) == [3]
