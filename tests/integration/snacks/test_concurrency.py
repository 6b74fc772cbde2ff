"""Parallel requests through the handler against committed data: no rule breaks."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any


def parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        # each thread stands for one Lambda container: its own event loop for Mangum
        asyncio.set_event_loop(asyncio.new_event_loop())
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_refreshes_of_one_token_cannot_both_succeed(committed_client):
    c = committed_client
    c.sign_up("mina@example.com")
    pair = c.sign_in("mina@example.com").json()
    results = parallel(
        [lambda: c.call("POST", "/snacks/auth/token/refresh/", body={"refresh": pair["refresh"]})] * 4
    )
    codes = Counter(r.status for r in results)
    assert codes[200] <= 1 and codes[200] + codes[401] == 4
    # whoever won, the family is revoked now (the others were reuse)
    winners = [r.json()["refresh"] for r in results if r.status == 200]
    for token in winners:
        assert c.call("POST", "/snacks/auth/token/refresh/", body={"refresh": token}).status == 401


def test_two_admins_resigning_at_once_leave_one_admin(committed_client):
    c = committed_client
    a = c.admin("a@example.com")
    b = c.admin("b@example.com")
    results = parallel(
        [lambda: c.call("DELETE", "/snacks/users/me/", a), lambda: c.call("DELETE", "/snacks/users/me/", b)]
    )
    assert sorted(r.status for r in results) == [204, 409]
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        admins = conn.execute(
            text("SELECT count(*) FROM snacks.users WHERE role = 'admin' AND NOT is_deleted")
        ).scalar()
    assert admins == 1


def _count(sql: str, **params) -> Any:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        return conn.execute(text(sql), params).one()


def test_parallel_reactions_end_with_exact_counts(committed_client):
    c = committed_client
    members = [c.member(f"m{i}@example.com") for i in range(6)]
    snack = c.snack(members[0], "Choco Pie")
    uid = snack["uid"]
    # everyone likes at once, and one of them twice more
    results = parallel(
        [lambda t=t: c.react(t, uid, "like") for t in members]
        + [lambda: c.react(members[0], uid, "like")] * 2
    )
    assert Counter(r.status for r in results) == Counter({200: 6, 409: 2})
    # half switch to hate while the other half cancel, all at once
    results = parallel(
        [lambda t=t: c.react(t, uid, "hate") for t in members[:3]]
        + [lambda t=t: c.react(t, uid, None) for t in members[3:]]
    )
    assert all(r.status == 200 for r in results)
    final = c.call("GET", f"/snacks/snacks/{uid}/", members[0]).json()
    assert (final["like_count"], final["hate_count"]) == (0, 3)
    from tests.integration.snacks.test_reactions import flush

    flush()
    assert tuple(
        _count("SELECT like_count, hate_count FROM snacks.snacks WHERE uid = CAST(:u AS uuid)", u=uid)
    ) == (0, 3)


def test_parallel_orders_of_one_snack_leave_one_open_order(committed_client):
    c = committed_client
    members = [c.member(f"m{i}@example.com") for i in range(4)]
    snack = c.snack(members[0], "Pepero")
    results = parallel([lambda t=t: c.order(t, (snack["uid"], 1)) for t in members])
    assert Counter(r.status for r in results) == Counter({201: 1, 409: 3})
    assert all(r.json()["snacks"] == ["Pepero"] for r in results if r.status == 409)


def test_parallel_status_changes_take_one_edge(committed_client):
    c = committed_client
    admin = c.admin()
    snack = c.snack(admin, "Pepero")
    order = c.order(admin, (snack["uid"], 1)).json()
    results = parallel(
        [lambda: c.status(admin, order["uid"], "approved"), lambda: c.status(admin, order["uid"], "canceled")]
        * 2
    )
    assert Counter(r.status for r in results)[200] in (1, 2)
    final = c.call("GET", f"/snacks/order/{order['uid']}/", admin).json()["status"]
    log = [tuple(r) for r in _rows("SELECT from_status, to_status FROM snacks.order_status_log ORDER BY id")]
    # every change that succeeded was a legal edge from the status it found
    assert log in (
        [("created", "canceled")],
        [("created", "approved")],
        [("created", "approved"), ("approved", "canceled")],
    )
    assert final == log[-1][1]


def _rows(sql: str) -> list:
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        return list(conn.execute(text(sql)))
