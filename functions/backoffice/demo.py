"""Demo data for the local cloud (contract B) and the sample events under ``events/backoffice-*``.

``seed(cloud)`` — called by ``opsdeck local up --demo`` — publishes a simulated OLTP change
stream (``simulator.OltpSimulator``: payment orders with their double entries, status changes,
some failures and voided legs, ~5 % duplicates, out-of-order delivery) to ``backoffice-changes``,
plus one malformed event that ends in ``backoffice-changes-dlq`` after ``maxReceiveCount``
receives. ``GET /backoffice/admin/tx/tx-0000000001`` then shows live data.

``write_sample_events()`` regenerates the sample events with the ``localcloud.events``
builders (``python -m functions.backoffice.demo``); a unit test keeps the files equal to it.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .simulator import OltpSimulator, deliver, poison

QUEUE = "backoffice-changes"
DEMO_ORDERS = 120
#: every role the admin API checks (the contract test's token carries them; docs/http-api.md)
CONTRACT_ROLES = ("ADMIN_READ", "ADMIN_AUDIT")


def contract(cloud: Any) -> None:
    """Contract data: the sample payment (``po-00000001`` with ``tx-0000000001``/``-0002``, wallets
    ``w-00011``/``w-00005``: the examples of the OpenAPI document) through the real consumer."""
    for change in sample_changes():
        cloud.send(QUEUE, json.dumps(change, separators=(",", ":")))
    cloud.run_until_idle()


def seed(cloud: Any) -> None:
    """Publish a demo change stream to the consumer's queue."""
    sim = OltpSimulator(seed=4, start_ms=int(time.time() * 1000) - 600_000, wallets=40)
    events = deliver(sim.run(DEMO_ORDERS), rng=random.Random(4), duplicate_rate=0.05, reorder_window=15)  # noqa: S311
    for event in events:
        cloud.send(QUEUE, json.dumps(event, separators=(",", ":")))
    cloud.send(QUEUE, poison("bad-amount", n=1))
    print(
        f"backoffice demo: {len(events)} change events for {DEMO_ORDERS} payment orders sent to {QUEUE} "
        "(+1 malformed, for the DLQ); try GET /backoffice/admin/tx/tx-0000000001 with "
        "`opsdeck token --role ADMIN_READ`"
    )


# ---------------------------------------------------------------- sample events

SAMPLE_WHEN = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
SAMPLE_SENT_MS = 1_767_225_900_000


def sample_changes() -> list[dict[str, Any]]:
    """One settled payment: order created, paid (two legs), settled — 7 row changes."""
    sim = OltpSimulator(seed=7, fail_rate=0.0, wallets=20)
    return sim.run(1)


def sample_snapshot() -> list[dict[str, Any]]:
    """The rows of ``sample_changes`` as a snapshot (op r): a backfill chunk."""
    sim = OltpSimulator(seed=7, fail_rate=0.0, wallets=20)
    sim.run(1)
    return sim.snapshot()


def sample_events() -> dict[str, Any]:
    """``{relative path: event}`` for every backoffice function."""
    from localcloud.events import http_event, sqs_event, sqs_record

    changes = sample_changes()
    bodies: list[str] = [json.dumps(c, separators=(",", ":")) for c in changes]
    # delivered out of order, one duplicate, and a poison record (amount in major units)
    delivered = [bodies[4], bodies[0], bodies[2], bodies[1], bodies[5], bodies[3], bodies[6], bodies[2]]
    delivered.insert(5, poison("bad-amount", n=1))
    records = [
        sqs_record(
            body,
            queue_name=QUEUE,
            message_id=f"00000000-0000-4000-8000-{i:012d}",
            sent_ms=SAMPLE_SENT_MS + i,
            receipt_handle=f"sample-receipt-{i}",
        )
        for i, body in enumerate(delivered)
    ]
    tx_id = next(c["after"]["tx_id"] for c in changes if c["source"]["table"] == "ledger_entries")
    order_id = changes[0]["after"]["order_id"]
    wallet_id = next(c["after"]["wallet_id"] for c in changes if c["source"]["table"] == "ledger_entries")

    def get(path: str, route: str, params: dict[str, str] | None = None, query: Any = "") -> dict[str, Any]:
        return http_event(
            "GET",
            path,
            route_key=f"GET {route}",
            path_parameters=params,
            query=query,
            headers={"user-agent": "opsdeck-sample/1.0"},
            when=SAMPLE_WHEN,
            request_id="c2FtcGxlLWJhY2tvZmZpY2U=",
        )

    api = "/backoffice/admin"
    return {
        "backoffice-consumer/batch-with-poison.json": sqs_event(records),
        "backoffice-api/tx.json": get(f"{api}/tx/{tx_id}", f"{api}/tx/{{tx_id}}", {"tx_id": tx_id}),
        "backoffice-api/payment-order.json": get(
            f"{api}/payment-orders/{order_id}", f"{api}/payment-orders/{{order_id}}", {"order_id": order_id}
        ),
        "backoffice-api/wallet-tx.json": get(
            f"{api}/wallets/{wallet_id}/tx",
            f"{api}/wallets/{{wallet_id}}/tx",
            {"wallet_id": wallet_id},
            query={"limit": "20"},
        ),
        "backoffice-api/audit.json": get(
            f"{api}/audit", f"{api}/audit", query={"target_type": "tx", "limit": "50"}
        ),
        "backoffice-api/docs.json": get("/backoffice/docs", "/backoffice/docs"),
        "backoffice-api/openapi.json": get("/backoffice/openapi.json", "/backoffice/openapi.json"),
        "backoffice-backfill/snapshot-chunk.json": {
            "changes": sample_snapshot(),
            "offset": 0,
        },
    }


def write_sample_events(root: Path | None = None) -> list[Path]:
    root = root or Path(__file__).resolve().parents[2] / "events"
    written = []
    for relative, event in sample_events().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_sample_events():
        print(p)
