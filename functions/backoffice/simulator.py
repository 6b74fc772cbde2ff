"""A simulated OLTP source: payment orders with their double entries, as a CDC change stream.

The backoffice's upstream is the payment system's database, seen through CDC. ``OltpSimulator``
keeps a small in-memory copy of that database and emits one Debezium-style envelope per row
change, committed in transactions with increasing ``source.ts_ms`` / ``lsn`` / ``txId``:

* a payment order is created (``CREATED``), then paid: the order moves to ``PENDING`` and its
  PAYMENT leg (payer wallet) and RECEIVE leg (payee wallet) are inserted in one transaction,
  sharing ``related_id = order_id``; later it settles (order and legs ``SETTLED``) or fails
  (``FAILED``), and sometimes a failed payment's legs are voided (deleted);
* lifecycles of many orders interleave, as concurrent traffic does;
* ``versioned`` / ``positions`` switch the row ``version`` and the source position off, to
  exercise the consumer's fallbacks (``version_missing``).

``deliver`` turns commit order into what a queue delivers: duplicates and out-of-order arrival.
``poison`` makes records the consumer must reject. ``snapshot`` gives the current rows as
``op: r`` envelopes (a backfill file). Used by ``demo.py``, tests and ``bench/``.

Contract B of the local cloud: ``create_app()`` serves generated streams at
``/_sim/backoffice`` (``GET /changes``, ``GET /snapshot`` as JSONL), handy for
``opsdeck backoffice backfill``; the functions themselves call nothing, so ``environment`` is empty.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CURRENCIES = ("KRW", "KRW", "KRW", "USD")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Order:
    order_id: str
    payer: str
    payee: str
    amount: int
    currency: str
    stage: str = "new"  # new → created → pending → settled/failed (→ voided)
    legs: tuple[str, str] | None = None


@dataclass
class OltpSimulator:
    seed: int = 0
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    wallets: int = 200
    versioned: bool = True
    positions: bool = True
    fail_rate: float = 0.1
    void_rate: float = 0.3  # of failed payments, how many have their legs deleted
    id_prefix: str = ""
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 (a simulation, not a secret)
        self.clock_ms = self.start_ms
        self.lsn = 1_000_000
        self.tx_counter = 0
        self.order_counter = 0
        self.entry_counter = 0

    # --------------------------------------------------------------- transactions

    def _commit(self, changes: list[tuple[str, str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """Apply ``[(table, op, row)]`` as one OLTP transaction; returns its envelopes."""
        self.clock_ms += self.rng.choice((0, 0, 1, 5, 20, 40))  # busy systems commit many per ms
        self.tx_counter += 1
        out = []
        for table, op, row in changes:
            self.lsn += self.rng.randint(8, 64)
            key = row["tx_id"] if table == "ledger_entries" else row["order_id"]
            before = self.rows.get((table, key))
            if op == "d":
                self.rows.pop((table, key), None)
                # default replica identity: a delete carries only the key
                before_image = {("tx_id" if table == "ledger_entries" else "order_id"): key}
                after_image = None
            else:
                if self.versioned:
                    row["version"] = (before or {}).get("version", 0) + 1
                row["updated_at"] = _iso(self.clock_ms)
                self.rows[(table, key)] = dict(row)
                before_image = None
                after_image = dict(row)
            source: dict[str, Any] = {
                "version": "2.7.0.Final",
                "connector": "postgresql",
                "name": "oltp",
                "db": "payments",
                "schema": "public",
                "table": table,
            }
            if self.positions:
                source.update(ts_ms=self.clock_ms, lsn=self.lsn, txId=self.tx_counter)
            out.append(
                {
                    "op": op,
                    "before": before_image,
                    "after": after_image,
                    "source": source,
                    "ts_ms": self.clock_ms + self.rng.randint(1, 30),
                }
            )
        return out

    def _order_row(self, o: _Order, status: str) -> dict[str, Any]:
        current = self.rows.get(("payment_orders", o.order_id))
        return {
            "order_id": o.order_id,
            "status": status,
            "amount": o.amount,
            "currency": o.currency,
            "payer_wallet_id": o.payer,
            "payee_wallet_id": o.payee,
            "created_at": current["created_at"] if current else _iso(self.clock_ms),
        }

    def _leg_row(self, o: _Order, tx_id: str, kind: str, status: str) -> dict[str, Any]:
        current = self.rows.get(("ledger_entries", tx_id))
        return {
            "tx_id": tx_id,
            "wallet_id": o.payer if kind == "PAYMENT" else o.payee,
            "type": kind,
            "amount": o.amount,
            "currency": o.currency,
            "status": status,
            "related_id": o.order_id,
            "related_type": "PAYMENT_ORDER",
            "created_at": current["created_at"] if current else _iso(self.clock_ms),
        }

    # ----------------------------------------------------------------- lifecycle

    def new_order(self) -> _Order:
        self.order_counter += 1
        payer, payee = self.rng.sample(range(1, self.wallets + 1), 2)
        currency = self.rng.choice(CURRENCIES)
        amount = self.rng.randint(10, 5000) * (100 if currency == "KRW" else 1)
        return _Order(
            order_id=f"{self.id_prefix}po-{self.order_counter:08d}",
            payer=f"{self.id_prefix}w-{payer:05d}",
            payee=f"{self.id_prefix}w-{payee:05d}",
            amount=amount,
            currency=currency,
        )

    def step(self, o: _Order) -> list[dict[str, Any]]:
        """Advance one order by one transaction; [] when its lifecycle is over."""
        if o.stage == "new":
            o.stage = "created"
            return self._commit([("payment_orders", "c", self._order_row(o, "CREATED"))])
        if o.stage == "created":
            o.stage = "pending"
            self.entry_counter += 2
            o.legs = (
                f"{self.id_prefix}tx-{self.entry_counter - 1:010d}",
                f"{self.id_prefix}tx-{self.entry_counter:010d}",
            )
            return self._commit(
                [
                    ("payment_orders", "u", self._order_row(o, "PENDING")),
                    ("ledger_entries", "c", self._leg_row(o, o.legs[0], "PAYMENT", "PENDING")),
                    ("ledger_entries", "c", self._leg_row(o, o.legs[1], "RECEIVE", "PENDING")),
                ]
            )
        if o.stage == "pending":
            assert o.legs is not None
            status = "FAILED" if self.rng.random() < self.fail_rate else "SETTLED"
            o.stage = status.lower()
            return self._commit(
                [
                    ("payment_orders", "u", self._order_row(o, status)),
                    ("ledger_entries", "u", self._leg_row(o, o.legs[0], "PAYMENT", status)),
                    ("ledger_entries", "u", self._leg_row(o, o.legs[1], "RECEIVE", status)),
                ]
            )
        if o.stage == "failed" and self.rng.random() < self.void_rate:
            assert o.legs is not None
            o.stage = "voided"
            return self._commit(
                [("ledger_entries", "d", {"tx_id": tx_id}) for tx_id in o.legs],
            )
        return []

    def run(self, orders: int, *, concurrency: int = 8) -> list[dict[str, Any]]:
        """Full lifecycles of ``orders`` new orders, ``concurrency`` of them interleaved."""
        events: list[dict[str, Any]] = []
        active: list[_Order] = []
        created = 0
        while created < orders or active:
            while created < orders and len(active) < concurrency:
                active.append(self.new_order())
                created += 1
            o = self.rng.choice(active)
            produced = self.step(o)
            if produced:
                events.extend(produced)
            else:
                active.remove(o)
        return events

    def snapshot(self) -> list[dict[str, Any]]:
        """The current rows as snapshot reads (``op: r``) at the current position."""
        out = []
        for (table, _), row in sorted(self.rows.items()):
            source: dict[str, Any] = {"table": table, "snapshot": "true"}
            if self.positions:
                source.update(ts_ms=self.clock_ms, lsn=self.lsn)
            out.append(
                {"op": "r", "before": None, "after": dict(row), "source": source, "ts_ms": self.clock_ms}
            )
        return out


# -------------------------------------------------------------------- delivery


def deliver(
    events: Iterable[Any],
    *,
    rng: random.Random | None = None,
    duplicate_rate: float = 0.05,
    reorder_window: int = 20,
) -> list[Any]:
    """At-least-once, out-of-order delivery: some events twice, each displaced within a window."""
    rng = rng or random.Random(0)  # noqa: S311
    out: list[Any] = []
    for event in events:
        out.append(event)
        if rng.random() < duplicate_rate:
            out.append(event)
    if reorder_window > 1:
        keyed = [(i + rng.uniform(0, reorder_window), e) for i, e in enumerate(out)]
        keyed.sort(key=lambda pair: pair[0])
        out = [e for _, e in keyed]
    return out


POISON_KINDS = ("not-json", "unknown-table", "missing-key", "bad-amount", "update-without-after")


def poison(kind: str, *, n: int = 0) -> str:
    """A message body the consumer must reject (and send to the DLQ)."""
    ledger = {
        "tx_id": f"poison-{n}",
        "wallet_id": "w-poison",
        "type": "PAYMENT",
        "amount": 100,
        "currency": "KRW",
        "status": "PENDING",
        "created_at": "2026-01-01T00:00:00Z",
    }
    source = {"table": "ledger_entries", "ts_ms": 1_767_225_600_000, "lsn": 1}
    if kind == "not-json":
        return '{"op": "c", "after": {"tx_id": '
    if kind == "unknown-table":
        return json.dumps({"op": "c", "after": ledger, "source": {**source, "table": "refunds"}})
    if kind == "missing-key":
        return json.dumps(
            {"op": "c", "after": {k: v for k, v in ledger.items() if k != "tx_id"}, "source": source}
        )
    if kind == "bad-amount":
        return json.dumps({"op": "u", "after": {**ledger, "amount": "12.50"}, "source": source})
    if kind == "update-without-after":
        return json.dumps({"op": "u", "before": ledger, "after": None, "source": source})
    raise ValueError(f"unknown poison kind {kind!r}; one of {POISON_KINDS}")


def jsonl(events: Iterable[Any]) -> Iterator[str]:
    for event in events:
        yield (event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))) + "\n"


# ------------------------------------------------------------- local cloud (contract B)


def create_app() -> Any:
    """``GET /changes`` (a delivered stream) and ``GET /snapshot`` (op r rows), both JSONL."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    def _params(request: Request) -> tuple[OltpSimulator, int, float] | PlainTextResponse:
        try:
            orders = int(request.query_params.get("orders", "100"))
            seed = int(request.query_params.get("seed", "0"))
            duplicates = float(request.query_params.get("duplicates", "0.05"))
        except ValueError:
            return PlainTextResponse("orders, seed and duplicates must be numbers\n", status_code=422)
        if not 1 <= orders <= 100_000 or not 0 <= duplicates <= 1:
            return PlainTextResponse("orders must be within 1..100000, duplicates 0..1\n", status_code=422)
        return OltpSimulator(seed=seed), orders, duplicates

    async def changes(request: Request):
        params = _params(request)
        if isinstance(params, PlainTextResponse):
            return params
        sim, orders, duplicates = params
        stream = deliver(sim.run(orders), rng=random.Random(sim.seed), duplicate_rate=duplicates)  # noqa: S311
        return StreamingResponse(jsonl(stream), media_type="application/x-ndjson")

    async def snapshot(request: Request):
        params = _params(request)
        if isinstance(params, PlainTextResponse):
            return params
        sim, orders, _ = params
        sim.run(orders)
        return StreamingResponse(jsonl(sim.snapshot()), media_type="application/x-ndjson")

    return Starlette(routes=[Route("/changes", changes), Route("/snapshot", snapshot)])


def environment(base_url: str) -> dict[str, str]:
    """The backoffice functions call no upstream: nothing to point at the simulator."""
    return {}
