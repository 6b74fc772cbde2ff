"""Reactions through the handler, Redis counts, the flush function (sample event) and
reconciliation after Redis loss; the list order by like/hate ratio."""

from __future__ import annotations

from sqlalchemy import text

from tests.support import LambdaContext, load_event

PROBLEM = "https://opsdeck.dev/problems/"


def flush() -> dict:
    from functions.snacks import flush as flush_module

    return flush_module.handler(
        load_event("snacks-reactions-flush/schedule.json"), LambdaContext("snacks-reactions-flush")
    )


def columns(db, uid: str) -> tuple[int, int]:
    row = db.execute(
        text("SELECT like_count, hate_count FROM snacks.snacks WHERE uid = CAST(:u AS uuid)"), {"u": uid}
    ).one()
    return row[0], row[1]


def test_like_again_is_409_the_other_switches_cancel_removes(client):
    m = client.member("mina@example.com")
    s = client.snack(m, "Choco Pie")
    r = client.react(m, s["uid"], "like")
    assert r.status == 200 and r.json() == {
        "snack_uid": s["uid"],
        "my_reaction": "like",
        "like_count": 1,
        "hate_count": 0,
    }
    again = client.react(m, s["uid"], "like")
    assert again.status == 409 and again.json()["type"] == PROBLEM + "reaction-exists"
    assert "cannot react twice" in again.json()["detail"]
    switched = client.react(m, s["uid"], "hate").json()
    assert (switched["like_count"], switched["hate_count"], switched["my_reaction"]) == (0, 1, "hate")
    canceled = client.react(m, s["uid"], None).json()
    assert (canceled["like_count"], canceled["hate_count"], canceled["my_reaction"]) == (0, 0, None)
    assert client.react(m, s["uid"], None).status == 404
    assert client.react(m, "00000000-0000-4000-8000-000000000000", "like").status == 404
    shown = client.call("GET", f"/snacks/snacks/{s['uid']}/", m).json()
    assert (shown["like_count"], shown["hate_count"], shown["my_reaction"]) == (0, 0, None)


def test_flush_writes_redis_counts_to_the_statistics_columns(client, db):
    a, b = client.member("a@example.com"), client.member("b@example.com")
    s = client.snack(a, "Choco Pie")
    client.react(a, s["uid"], "like")
    client.react(b, s["uid"], "hate")
    assert columns(db, s["uid"]) == (0, 0)  # not flushed yet
    result = flush()
    assert result["flushed"] == 1
    assert columns(db, s["uid"]) == (1, 1)


def test_after_redis_loss_counts_come_back_exact(client, db, redis_client):
    a, b, c = client.member("a@example.com"), client.member("b@example.com"), client.member("c@example.com")
    s = client.snack(a, "Choco Pie")
    t = client.snack(a, "Pepero")
    for token in (a, b, c):
        client.react(token, s["uid"], "like")
    client.react(a, t["uid"], "hate")
    flush()
    redis_client.flushdb()  # Redis lost everything: counts, dirty set, epoch
    # a request meanwhile still answers exact counts (from the table) and marks the snack
    r = client.react(b, s["uid"], "hate").json()
    assert (r["like_count"], r["hate_count"]) == (2, 1)
    listed = {i["name"]: i for i in client.call("GET", "/snacks/snacks/", a).json()["items"]}
    assert (listed["Pepero"]["like_count"], listed["Pepero"]["hate_count"]) == (0, 1)  # from the columns
    result = flush()
    assert result["reconciled_all"] is True
    assert columns(db, s["uid"]) == (2, 1) and columns(db, t["uid"]) == (0, 1)
    # Redis has the exact counts again and increments continue from them
    r = client.react(c, s["uid"], None).json()
    assert (r["like_count"], r["hate_count"]) == (1, 1)
    assert flush()["reconciled_all"] is False


def test_drift_in_redis_is_repaired_by_reconciliation(client, db, redis_client):
    a = client.member("a@example.com")
    s = client.snack(a, "Choco Pie")
    client.react(a, s["uid"], "like")
    sid = db.execute(
        text("SELECT id FROM snacks.snacks WHERE uid = CAST(:u AS uuid)"), {"u": s["uid"]}
    ).scalar()
    redis_client.hset("snacks:rx:{c}:likes", sid, 41)  # drift
    redis_client.hset("snacks:rx:{c}:hates", sid, 7)
    from functions.snacks import flush as flush_module

    flush_module.handler({"reconcile": "all"}, LambdaContext("snacks-reactions-flush"))
    assert columns(db, s["uid"]) == (1, 0)
    assert client.call("GET", f"/snacks/snacks/{s['uid']}/", a).json()["like_count"] == 1


def test_list_is_sorted_by_like_hate_ratio(client, db):
    """7/3 (2.33) above 60/40 (1.5); no hates first; no reactions count as 1:1."""
    m = client.member("mina@example.com")
    names = ["A 7/3", "B 60/40", "C 5/0", "D none", "E 1/4", "F 2/2", "G 9/0"]
    for n in names:
        client.snack(m, n)
    db.execute(
        text(
            """INSERT INTO snacks.users (email, name, password_hash)
               SELECT 'u' || g || '@example.com', 'u' || g, 'x' FROM generate_series(1, 100) g"""
        )
    )
    counts = {
        "A 7/3": (7, 3),
        "B 60/40": (60, 40),
        "C 5/0": (5, 0),
        "E 1/4": (1, 4),
        "F 2/2": (2, 2),
        "G 9/0": (9, 0),
    }
    for name, (likes, hates) in counts.items():
        db.execute(
            text(
                """INSERT INTO snacks.reactions (snack_id, user_id, kind)
                   SELECT s.id, u.id, CASE WHEN u.n <= :l THEN 'like' ELSE 'hate' END
                   FROM snacks.snacks s,
                        (SELECT id, row_number() OVER (ORDER BY id) AS n FROM snacks.users
                         WHERE email LIKE 'u%@example.com') u
                   WHERE s.name = :name AND u.n <= :total"""
            ),
            {"name": name, "l": likes, "total": likes + hates},
        )
    from functions.snacks import flush as flush_module

    flush_module.handler({"reconcile": "all"}, LambdaContext("snacks-reactions-flush"))
    items = client.call("GET", "/snacks/snacks/", m).json()["items"]
    assert [i["name"] for i in items] == ["G 9/0", "C 5/0", "A 7/3", "B 60/40", "F 2/2", "D none", "E 1/4"]
    assert [(i["like_count"], i["hate_count"]) for i in items][:4] == [(9, 0), (5, 0), (7, 3), (60, 40)]
    # keyset pages give the same order
    page1 = client.call("GET", "/snacks/snacks/", m, query={"limit": "3"}).json()
    page2 = client.call(
        "GET", "/snacks/snacks/", m, query={"limit": "3", "cursor": page1["next_cursor"]}
    ).json()
    page3 = client.call(
        "GET", "/snacks/snacks/", m, query={"limit": "3", "cursor": page2["next_cursor"]}
    ).json()
    assert [i["name"] for i in page1["items"] + page2["items"] + page3["items"]] == [i["name"] for i in items]
    assert page3["next_cursor"] is None
    assert client.call("GET", "/snacks/snacks/", m, query={"cursor": "garbage"}).status == 422


def test_the_flush_reconciles_everything_once_an_hour(client, db, redis_client):
    a = client.member("a@example.com")
    s = client.snack(a, "Choco Pie")
    client.react(a, s["uid"], "like")
    assert flush()["reconciled_all"] is True  # first run: no epoch yet
    assert flush()["reconciled_all"] is False
    sid = db.execute(
        text("SELECT id FROM snacks.snacks WHERE uid = CAST(:u AS uuid)"), {"u": s["uid"]}
    ).scalar()
    redis_client.hset("snacks:rx:{c}:likes", sid, 5)  # counted, but the table lost it (async commit)
    redis_client.set("snacks:rx:{c}:epoch", "1")  # the last full reconciliation is long ago
    assert flush()["reconciled_all"] is True
    assert columns(db, s["uid"]) == (1, 0)
