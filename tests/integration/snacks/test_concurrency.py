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
