"""The simulated OLTP source: consistent double entries, and its local-cloud endpoints."""

from __future__ import annotations

import asyncio
import json
import random

import httpx

from functions.backoffice.simulator import OltpSimulator, create_app, deliver, environment


def test_every_order_gets_two_legs_on_distinct_wallets_with_equal_amounts():
    sim = OltpSimulator(seed=11, fail_rate=0.0)
    sim.run(50)
    legs: dict[str, list[dict]] = {}
    for (table, _), row in sim.rows.items():
        if table == "ledger_entries":
            legs.setdefault(row["related_id"], []).append(row)
    assert len(legs) == 50
    for rows in legs.values():
        assert sorted(r["type"] for r in rows) == ["PAYMENT", "RECEIVE"]
        assert rows[0]["amount"] == rows[1]["amount"] and rows[0]["wallet_id"] != rows[1]["wallet_id"]
        assert {r["status"] for r in rows} == {"SETTLED"}


def test_versions_increase_per_row():
    stream = OltpSimulator(seed=1).run(20)
    last: dict[str, int] = {}
    for e in stream:
        if e["after"] is None:
            continue
        key = e["after"].get("tx_id") or e["after"]["order_id"]
        assert e["after"]["version"] == last.get(key, 0) + 1
        last[key] = e["after"]["version"]


def test_delivery_duplicates_and_reorders_but_loses_nothing():
    stream = list(range(1000))
    delivered = deliver(stream, rng=random.Random(1), duplicate_rate=0.1, reorder_window=10)
    assert set(delivered) == set(stream)
    assert 1050 < len(delivered) < 1150
    assert delivered != sorted(delivered)


def get(path: str, params: dict) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.get(path, params=params)

    return asyncio.run(run())


def test_local_cloud_endpoints_serve_jsonl():
    snapshot = get("/snapshot", {"orders": 3, "seed": 2})
    assert snapshot.status_code == 200
    rows = [json.loads(line) for line in snapshot.text.splitlines()]
    assert {r["op"] for r in rows} == {"r"}
    changes = get("/changes", {"orders": 3, "duplicates": 0})
    assert {json.loads(line)["op"] for line in changes.text.splitlines()} <= {"c", "u", "d"}
    assert get("/changes", {"orders": "many"}).status_code == 422
    assert environment("http://127.0.0.1:1/_sim/backoffice") == {}
