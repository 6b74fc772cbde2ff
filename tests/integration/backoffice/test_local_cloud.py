"""The backoffice in the local cloud (contract A, ``local_cloud`` fixture, virtual clock).

Redrive — poison → DLQ after maxReceiveCount; after a fix, replay applies it once. The story:
one leg of a payment cannot be stored (the read store refuses it — simulated by a constraint
that the "fix" drops), and one message is not even JSON. Both keep failing alone while
their neighbours are applied, and reach ``backoffice-changes-dlq`` after the catalog's
``max_receive_count`` receives (virtual clock: visibility timeouts pass instantly). After the fix
the fixable message is replayed (JMESPath filter); it is applied exactly once and completes the
pair; the malformed one stays in the DLQ.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from functions import catalog

QUEUE, DLQ = "backoffice-changes", "backoffice-changes-dlq"
T0 = 1_767_225_600_000


def leg(tx_id: str, kind: str, wallet: str) -> dict:
    return {
        "op": "c",
        "before": None,
        "after": {
            "tx_id": tx_id,
            "wallet_id": wallet,
            "type": kind,
            "amount": 1000,
            "currency": "KRW",
            "status": "SETTLED",
            "related_id": "po-redrive",
            "created_at": "2026-01-01T00:00:00Z",
            "version": 1,
        },
        "source": {"table": "ledger_entries", "ts_ms": T0, "lsn": 10},
    }


@pytest.fixture
def blocked_wallet(local_cloud):
    """A read store that refuses one wallet's rows until the fix (dropping the constraint)."""
    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(
            text(
                "ALTER TABLE bo.ledger_entries "
                "ADD CONSTRAINT redrive_blocked CHECK (wallet_id <> 'w-blocked')"
            )
        )

    def fix() -> None:
        with db.transaction() as conn:
            conn.execute(text("ALTER TABLE bo.ledger_entries DROP CONSTRAINT IF EXISTS redrive_blocked"))

    yield fix
    fix()


def test_poison_reaches_the_dlq_and_replay_after_a_fix_applies_it_once(local_cloud, blocked_wallet):
    from opsdeck import db

    max_receives = catalog.by_name()["backoffice-consumer"].trigger.max_receive_count
    local_cloud.send(QUEUE, json.dumps(leg("t-pay", "PAYMENT", "w-payer")))
    blocked_id = local_cloud.send(QUEUE, json.dumps(leg("t-rec", "RECEIVE", "w-blocked")))
    garbage_id = local_cloud.send(QUEUE, '{"op": "c", "after": ')

    local_cloud.run_until_idle(max_seconds=6 * 3600)
    assert local_cloud.depth(QUEUE) == (0, 0)
    assert local_cloud.depth(DLQ) == (2, 0)
    failures = [j for j in local_cloud.journal() if j["function"] == "backoffice-consumer"]
    for message_id in (blocked_id, garbage_id):
        assert sum(message_id in (j["batch_item_failures"] or []) for j in failures) == max_receives

    with db.transaction() as conn:
        rows = dict(conn.execute(text("SELECT tx_id, wallet_id FROM bo.ledger_entries")).all())
        status = conn.execute(text("SELECT pairing_status FROM bo.payment_ledger_pairs")).scalar()
    assert rows == {"t-pay": "w-payer"}  # the neighbour was applied
    assert status == "INCOMPLETE"

    blocked_wallet()  # the fix
    assert local_cloud.replay(DLQ, filter="after.wallet_id == 'w-blocked'")["moved"] == 1
    before = len(local_cloud.journal())
    local_cloud.run_until_idle(max_seconds=600)
    after = [j for j in local_cloud.journal()[before:] if j["function"] == "backoffice-consumer"]
    assert [(j["outcome"], j["batch_item_failures"]) for j in after] == [("ok", [])]
    assert local_cloud.depth(QUEUE) == (0, 0)
    assert local_cloud.depth(DLQ) == (1, 0)  # the malformed message waits for a human
    assert [m["MessageId"] for m in local_cloud.peek(DLQ)] == [garbage_id]

    with db.transaction() as conn:
        rows = dict(conn.execute(text("SELECT tx_id, wallet_id FROM bo.ledger_entries")).all())
        pair = conn.execute(text("SELECT pairing_status, receive_tx_id FROM bo.payment_ledger_pairs")).one()
    assert rows == {"t-pay": "w-payer", "t-rec": "w-blocked"}
    assert tuple(pair) == ("COMPLETE", "t-rec")

    # replaying again finds nothing; a duplicate delivery would change nothing either
    assert local_cloud.replay(DLQ, filter="after.wallet_id == 'w-blocked'", dry_run=True)["matched"] == 0


def test_demo_publishes_a_stream_the_admin_api_serves(local_cloud, capsys):
    from functions.backoffice import demo
    from opsdeck.auth import issue_dev_token

    demo.seed(local_cloud)
    assert "change events for 120 payment orders" in capsys.readouterr().out
    local_cloud.run_until_idle(max_seconds=6 * 3600)
    assert local_cloud.depth(QUEUE) == (0, 0)
    assert local_cloud.depth(DLQ) == (1, 0)  # the one malformed demo event

    headers = {"authorization": f"Bearer {issue_dev_token('demo', ['ADMIN_READ'])}"}
    status, _, body = local_cloud.request("GET", "/backoffice/admin/tx/tx-0000000001", headers=headers)
    assert status == 200
    view = json.loads(body)
    assert view["pairing_status"] in ("COMPLETE", "INCOMPLETE")
    assert view["payment_order"]["order_id"] == view["entry"]["related_id"]
    assert view["data_lag_sec"] is not None
    status, _, _ = local_cloud.request("GET", "/backoffice/admin/tx/tx-0000000001")
    assert status == 401
