"""Statistics through the handler against a hand-computed fixture (times UTC).

o6 2023-12-31 23:59  G x5 @ 10 KRW                    =    50 KRW
o1 2024-01-01 09:00  A x2 @ 1000 KRW, C x4 @ 1.25 USD = 2000 KRW + 5.00 USD
o2 2024-01-07 23:59  B x1 @ 2500 KRW                  =  2500 KRW
o3 2024-01-08 00:00  D x3 @ 500 KRW                   =  1500 KRW
o4 2024-01-15 12:00  E x2 @ 800 KRW   (canceled)      = (1600 KRW, not counted)
o5 2024-02-01 00:00  F x1 @ 100 KRW                   =   100 KRW
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

FIXTURE = [
    ("o6", "2023-12-31T23:59:00Z", [("G", 5, "10", "KRW")]),
    ("o1", "2024-01-01T09:00:00Z", [("A", 2, "1000", "KRW"), ("C", 4, "1.25", "USD")]),
    ("o2", "2024-01-07T23:59:59Z", [("B", 1, "2500", "KRW")]),
    ("o3", "2024-01-08T00:00:00Z", [("D", 3, "500", "KRW")]),
    ("o4", "2024-01-15T12:00:00Z", [("E", 2, "800", "KRW")]),
    ("o5", "2024-02-01T00:00:00Z", [("F", 1, "100", "KRW")]),
]


@pytest.fixture
def stats(client, db):
    admin = client.admin()
    uids = {}
    for label, at, items in FIXTURE:
        for name, _q, price, currency in items:
            client.snack(admin, name, currency, price)
        order_id, uid = db.execute(
            text(
                """INSERT INTO snacks.orders (user_id, created_at)
                   SELECT id, CAST(:at AS timestamptz) FROM snacks.users LIMIT 1 RETURNING id, uid::text"""
            ),
            {"at": at},
        ).one()
        uids[label] = uid
        for name, q, price, currency in items:
            db.execute(
                text(
                    """INSERT INTO snacks.purchases
                           (order_id, snack_id, quantity, unit_price, currency, ordered_at)
                       SELECT :o, id, :q, CAST(:p AS numeric), :c, now() FROM snacks.snacks WHERE name = :n"""
                ),
                {"o": order_id, "q": q, "p": price, "c": currency, "n": name},
            )
    assert client.status(admin, uids["o4"], "canceled").status == 200

    def get(**query):
        r = client.call("GET", "/snacks/statistics/", admin, query={k: str(v) for k, v in query.items()})
        assert r.status == 200, r
        body = r.json()
        body["order_uids"] = {
            label for label, uid in uids.items() if uid in {o["uid"] for o in body["items"]}
        }
        return body

    return get


def test_month(stats):
    s = stats(year=2024, month=1)
    assert s["period"]["kind"] == "month"
    assert s["order_count"] == 3 and s["orders_by_status"] == {"created": 3, "canceled": 1}
    assert s["snack_quantity"] == 10
    assert s["amount"] == {"KRW": "6000.00", "USD": "5.00"}
    assert [(x["name"], x["quantity"]) for x in s["snacks"]] == [("C", 4), ("D", 3), ("A", 2), ("B", 1)]
    assert s["order_uids"] == {"o1", "o2", "o3", "o4"}  # the order list shows every status


def test_nth_week_of_a_month_and_iso_week(stats):
    w1 = stats(year=2024, month=1, week=1)
    assert (w1["order_count"], w1["snack_quantity"], w1["amount"]) == (
        2,
        7,
        {"KRW": "4500.00", "USD": "5.00"},
    )
    assert w1["period"]["start"].startswith("2024-01-01") and w1["period"]["end"].startswith("2024-01-08")
    w2 = stats(year=2024, month=1, week=2)
    assert (w2["order_count"], w2["amount"]) == (1, {"KRW": "1500.00"})
    iso1 = stats(year=2024, iso_week=1)  # 2024-01-01 is a Monday: ISO week 1 = 1..7 January
    assert (iso1["order_count"], iso1["snack_quantity"]) == (2, 7)
    iso2 = stats(year=2024, iso_week=2)
    assert iso2["order_uids"] == {"o3"}


def test_day_range_year(stats):
    d = stats(year=2024, month=1, day=8)
    assert d["order_uids"] == {"o3"} and d["amount"] == {"KRW": "1500.00"}
    r = stats(**{"from": "2023-12-31", "to": "2024-01-01"})
    assert (r["order_count"], r["snack_quantity"], r["amount"]) == (2, 11, {"KRW": "2050.00", "USD": "5.00"})
    y = stats(year=2024)
    assert (y["order_count"], y["snack_quantity"], y["amount"]) == (4, 11, {"KRW": "6100.00", "USD": "5.00"})
    empty = stats(year=2030)
    assert (empty["order_count"], empty["snack_quantity"], empty["amount"], empty["snacks"]) == (0, 0, {}, [])


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"month": "1"},
        {"year": "2024", "day": "3"},
        {"from": "2024-01-01"},
        {"year": "2024", "month": "1", "iso_week": "1"},
        {"year": "2024", "colour": "red"},
        {"year": "+2024"},
        {"from": "2024-01-01T00:00", "to": "2024-01-02"},
        [("year", "2024"), ("year", "2025")],
    ],
)
def test_combinations_the_document_does_not_name_are_422(client, query):
    admin = client.admin()
    assert client.call("GET", "/snacks/statistics/", admin, query=query).status == 422


@pytest.mark.parametrize(
    "query",
    [
        {"year": "2023", "month": "2", "day": "30"},
        {"year": "2023", "month": "2", "week": "5"},
        {"from": "2024-01-02", "to": "2024-01-01"},
        {"year": "2024", "iso_week": "53"},
    ],
)
def test_periods_the_calendar_does_not_have_are_404(client, query):
    admin = client.admin()
    r = client.call("GET", "/snacks/statistics/", admin, query=query)
    assert r.status == 404 and r.json()["type"].endswith("/no-such-period")


def test_statistics_are_for_admins(client):
    client.admin()
    m = client.member("mina@example.com")
    assert client.call("GET", "/snacks/statistics/", m, query={"year": "2024"}).status == 403


def test_cached_figures_follow_every_order_write(client, redis_client):
    """Figures are cached per period in Redis; a new order, an edit and a status change each
    show in the next read of their month (and of a range or year overlapping it), never the
    figures cached before."""
    import datetime as dt

    admin = client.admin()
    m = client.member("mina@example.com")
    a, b = client.snack(admin, "A", "KRW", "1000"), client.snack(admin, "B", "KRW", "250")
    now = dt.datetime.now(dt.UTC)

    def figures(**query):
        query = query or {"year": now.year, "month": now.month}
        r = client.call("GET", "/snacks/statistics/", admin, query={k: str(v) for k, v in query.items()})
        assert r.status == 200, r
        body = r.json()
        return body["order_count"], body["snack_quantity"], body["amount"]

    assert figures() == (0, 0, {})
    assert figures(year=now.year) == (0, 0, {})
    assert redis_client.keys("snacks:stats:20*")  # cached
    order = client.order(m, (a["uid"], 2)).json()
    assert figures() == (1, 2, {"KRW": "2000.00"})
    assert figures(year=now.year) == (1, 2, {"KRW": "2000.00"})
    edit = {"items": [{"snack_uid": b["uid"], "quantity": 3}]}
    assert client.call("PUT", f"/snacks/order/{order['uid']}/", m, edit).status == 200
    assert figures() == (1, 3, {"KRW": "750.00"})
    assert client.status(admin, order["uid"], "canceled").status == 200
    assert figures() == (0, 0, {})
    assert figures(year=now.year) == (0, 0, {})
