"""Two consumers applying the two legs of the same orders at the same time still complete every pair.

Each consumer's pair recompute only sees committed legs of the other; the pair-row locks taken
before the recompute make the later transaction recompute after the earlier one committed.
Real commits on two connections (``committed_db``), two threads.
"""

from __future__ import annotations

import threading

from sqlalchemy import text

from tests.integration.backoffice.helpers import consume, records


def leg(order: int, kind: str) -> dict:
    tx_id = f"t{order}-{kind[0]}"
    return {
        "op": "c",
        "before": None,
        "after": {
            "tx_id": tx_id,
            "wallet_id": f"w-{kind}",
            "type": kind,
            "amount": 100,
            "currency": "KRW",
            "status": "SETTLED",
            "related_id": f"po-{order}",
            "created_at": "2026-01-01T00:00:00Z",
            "version": 1,
        },
        "source": {"table": "ledger_entries", "ts_ms": 1_767_225_600_000 + order, "lsn": order},
    }


def test_concurrent_legs_of_the_same_orders_converge_to_complete_pairs(committed_db):
    orders = range(300)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(kind: str, offset: int) -> None:
        try:
            start.wait()
            bodies = [leg(o, kind) for o in orders]
            for i in range(0, len(bodies), 5):
                assert consume(records(bodies[i : i + 5], start=offset + i)) == []
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k, n)) for k, n in (("PAYMENT", 0), ("RECEIVE", 10_000))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with committed_db.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT pairing_status, count(*) FROM bo.payment_ledger_pairs GROUP BY pairing_status")
            ).all()
        )
    assert statuses == {"COMPLETE": len(orders)}
