"""Snacks and orders through the handler: identity, URLs, the 36 status pairs, the hate > like
gate, the duplicate-snack rule, edit only while created, who sees and changes what."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text

from functions.snacks.domain import STATUSES, TRANSITIONS

PROBLEM = "https://opsdeck.dev/problems/"
PATH_TO = {
    "created": [],
    "approved": ["approved"],
    "ordered": ["approved", "ordered"],
    "shipping": ["approved", "ordered", "shipping"],
    "completed": ["approved", "ordered", "shipping", "completed"],
    "canceled": ["canceled"],
}
ETA = "2026-12-24"


def _walk(client, admin, order_uid, statuses):
    for s in statuses:
        r = client.status(admin, order_uid, s, ETA if s in ("ordered", "shipping") else None)
        assert r.status == 200, r


def test_snack_names_are_unique_case_and_space_insensitively(client):
    m = client.member("mina@example.com")
    client.snack(m, "Choco Pie")
    for same in ("choco pie", "ChocoPie", "  CHOCO   PIE "):
        r = client.call("POST", "/snacks/snacks/", m, {"name": same, "currency": "KRW", "price": "1"})
        assert r.status == 409, same
        assert "Choco Pie" in r.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example.com/x",
        "javascript:alert(1)",
        "https://user:pw@shop.example.com/",
        "https://@x.com/",
        "http://",
    ],
)
def test_purchase_url_is_http_or_https_without_credentials(client, url):
    m = client.member("mina@example.com")
    r = client.call(
        "POST", "/snacks/snacks/", m, {"name": "X", "currency": "KRW", "price": "1", "purchase_url": url}
    )
    assert r.status == 422


def test_price_is_decimal_and_kept_exactly(client):
    m = client.member("mina@example.com")
    s = client.snack(m, "Kitkat", "USD", "1.25")
    assert s["price"] == "1.25"
    assert (
        client.call("POST", "/snacks/snacks/", m, {"name": "Y", "currency": "usd", "price": "1"}).status
        == 422
    )
    assert (
        client.call("POST", "/snacks/snacks/", m, {"name": "Y", "currency": "USD", "price": "1.234"}).status
        == 422
    )


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_every_status_pair_is_allowed_or_refused(client, current, target):
    admin = client.admin()
    snack = client.snack(admin, "Snack")
    order = client.order(admin, (snack["uid"], 1)).json()
    _walk(client, admin, order["uid"], PATH_TO[current])
    r = client.status(admin, order["uid"], target, ETA if target in ("ordered", "shipping") else None)
    if target in TRANSITIONS[current]:
        assert r.status == 200, r
        assert r.json()["status"] == target
        assert r.json()["estimated_arrival"] == (
            ETA if target in ("ordered", "shipping", "completed") else None
        )
    else:
        assert r.status == 409, r
        assert r.json()["type"] == PROBLEM + "illegal-transition"
        assert client.call("GET", f"/snacks/order/{order['uid']}/", admin).json()["status"] == current


def test_estimated_arrival_exactly_on_ordered_and_shipping(client):
    admin = client.admin()
    order = client.order(admin, (client.snack(admin, "S")["uid"], 1)).json()
    assert client.status(admin, order["uid"], "approved", ETA).status == 422
    assert client.status(admin, order["uid"], "approved").status == 200
    assert client.status(admin, order["uid"], "ordered").status == 422
    assert client.status(admin, order["uid"], "ordered", ETA).status == 200
    assert client.status(admin, order["uid"], "shipping").status == 422
    r = client.status(admin, order["uid"], "shipping", "2026-12-26")
    assert r.json()["estimated_arrival"] == "2026-12-26"
    assert client.status(admin, order["uid"], "completed", ETA).status == 422


def test_no_other_code_path_writes_a_status(client, db):
    admin = client.admin()
    order = client.order(admin, (client.snack(admin, "S")["uid"], 1)).json()
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="only through the transition function"), db.begin_nested():
        db.execute(
            text("UPDATE snacks.orders SET status = 'approved' WHERE uid = CAST(:u AS uuid)"),
            {"u": order["uid"]},
        )
    with pytest.raises(DBAPIError, match="starts as created"), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO snacks.orders (user_id, status) SELECT id, 'shipping' FROM snacks.users LIMIT 1"
            )
        )
    # the function's own session flag does not open illegal edges either
    with pytest.raises(DBAPIError, match="illegal order status transition"), db.begin_nested():
        db.execute(text("SELECT set_config('snacks.transition', :u, true)"), {"u": order["uid"]})
        db.execute(
            text("UPDATE snacks.orders SET status = 'completed' WHERE uid = CAST(:u AS uuid)"),
            {"u": order["uid"]},
        )


def test_only_admins_change_status(client):
    client.admin()
    m = client.member("mina@example.com")
    order = client.order(m, (client.snack(m, "S")["uid"], 1)).json()
    r = client.status(m, order["uid"], "approved")
    assert r.status == 403


@pytest.mark.parametrize(("start", "target"), [("created", "approved"), ("approved", "ordered")])
def test_more_hates_than_likes_blocks_approval_and_ordering_naming_the_snacks(client, start, target):
    admin = client.admin()
    m1, m2 = client.member("a@example.com"), client.member("b@example.com")
    bad, good = client.snack(admin, "Shrimp Cracker"), client.snack(admin, "Choco Pie")
    order = client.order(admin, (bad["uid"], 1), (good["uid"], 1)).json()
    _walk(client, admin, order["uid"], PATH_TO[start])
    client.react(m1, bad["uid"], "hate")
    client.react(m2, bad["uid"], "hate")
    client.react(m1, good["uid"], "hate")
    client.react(admin, bad["uid"], "like")
    client.react(m2, good["uid"], "like")  # 1 like : 1 hate is not "more hates"
    r = client.status(admin, order["uid"], target, ETA if target == "ordered" else None)
    assert r.status == 409 and r.json()["type"] == PROBLEM + "disliked-snacks"
    assert r.json()["snacks"] == ["Shrimp Cracker"] and "Shrimp Cracker" in r.json()["detail"]
    client.react(m1, bad["uid"], "like")  # now 2 likes : 1 hate
    assert client.status(admin, order["uid"], target, ETA if target == "ordered" else None).status == 200


def test_the_gate_does_not_apply_after_ordered(client):
    admin = client.admin()
    m = client.member("a@example.com")
    snack = client.snack(admin, "S")
    order = client.order(admin, (snack["uid"], 1)).json()
    _walk(client, admin, order["uid"], PATH_TO["ordered"])
    client.react(m, snack["uid"], "hate")
    assert client.status(admin, order["uid"], "shipping", ETA).status == 200


def test_a_snack_in_a_not_yet_shipped_order_cannot_be_requested_again(client):
    admin = client.admin()
    m = client.member("mina@example.com")
    snack = client.snack(m, "Pepero")
    other = client.snack(m, "Kitkat")
    first = client.order(m, (snack["uid"], 2)).json()
    for state in ("created", "approved", "ordered"):
        if state != "created":
            _walk(client, admin, first["uid"], [state])
        r = client.order(m, (other["uid"], 1), (snack["uid"], 1))
        assert r.status == 409, state
        assert r.json()["type"] == PROBLEM + "snack-already-requested" and r.json()["snacks"] == ["Pepero"]
        # and by name too
        by_name = client.call(
            "POST", "/snacks/order/", m, {"items": [{"snack": {"name": "pepero "}, "quantity": 1}]}
        )
        assert by_name.status == 409
    _walk(client, admin, first["uid"], ["shipping"])
    assert client.order(m, (snack["uid"], 1)).status == 201


def test_a_canceled_order_frees_its_snacks_and_one_order_lists_a_snack_once(client):
    admin = client.admin()
    snack = client.snack(admin, "Pepero")
    first = client.order(admin, (snack["uid"], 2)).json()
    twice = client.order(admin, (snack["uid"], 1), (snack["uid"], 3))
    assert twice.status == 409 and twice.json()["snacks"] == ["Pepero"]
    _walk(client, admin, first["uid"], ["canceled"])
    assert client.order(admin, (snack["uid"], 1)).status == 201


def test_new_snacks_by_name_are_registered_and_known_ones_reused(client):
    m = client.member("mina@example.com")
    known = client.snack(m, "Choco Pie", "KRW", "4800")
    body = {
        "items": [
            {"snack": {"name": "choco pie"}, "quantity": 2},
            {"snack": {"name": "Honey Butter Chip", "currency": "KRW", "price": "1500"}, "quantity": 5},
        ]
    }
    r = client.call("POST", "/snacks/order/", m, body)
    assert r.status == 201, r
    items = r.json()["items"]
    assert [(i["name"], i["quantity"], i["unit_price"]) for i in items] == [
        ("Choco Pie", 2, "4800.00"),
        ("Honey Butter Chip", 5, "1500.00"),
    ]
    assert items[0]["snack_uid"] == known["uid"]
    missing = client.call(
        "POST", "/snacks/order/", m, {"items": [{"snack": {"name": "Unknown"}, "quantity": 1}]}
    )
    assert missing.status == 404 and "give its currency and price" in missing.json()["detail"]


def test_edit_only_while_created(client):
    admin = client.admin()
    m = client.member("mina@example.com")
    a, b = client.snack(m, "A"), client.snack(m, "B")
    order = client.order(m, (a["uid"], 1)).json()
    edit = {"items": [{"snack_uid": b["uid"], "quantity": 4}], "note": "changed"}
    r = client.call("PUT", f"/snacks/order/{order['uid']}/", m, edit)
    assert (
        r.status == 200 and [i["name"] for i in r.json()["items"]] == ["B"] and r.json()["note"] == "changed"
    )
    assert client.order(m, (a["uid"], 1)).status == 201  # A is free again
    _walk(client, admin, order["uid"], ["approved"])
    r = client.call("PUT", f"/snacks/order/{order['uid']}/", m, {"note": "too late"})
    assert r.status == 409 and r.json()["type"] == PROBLEM + "order-not-editable"


def test_members_see_their_orders_admins_all_and_the_monthly_list(client, db):
    admin = client.admin()
    m1, m2 = client.member("a@example.com"), client.member("b@example.com")
    o1 = client.order(m1, (client.snack(m1, "A")["uid"], 1)).json()
    o2 = client.order(m2, (client.snack(m2, "B")["uid"], 1)).json()
    db.execute(
        text("UPDATE snacks.orders SET created_at = '2024-03-15T10:00:00Z' WHERE uid = CAST(:u AS uuid)"),
        {"u": o1["uid"]},
    )
    assert [o["uid"] for o in client.call("GET", "/snacks/orders/", m1).json()["items"]] == [o1["uid"]]
    assert {o["uid"] for o in client.call("GET", "/snacks/orders/", admin).json()["items"]} == {
        o1["uid"],
        o2["uid"],
    }
    march = client.call("GET", "/snacks/orders/", admin, query={"year": "2024", "month": "3"}).json()["items"]
    assert [o["uid"] for o in march] == [o1["uid"]]
    assert march[0]["status"] == "created" and march[0]["items"][0]["name"] == "A"
    assert client.call("GET", f"/snacks/order/{o2['uid']}/", m1).status == 404
    this_march = client.call("GET", "/snacks/orders/", admin, query={"month": "3"})  # of this year
    assert this_march.status == 200 and this_march.json()["items"] == []


def test_image_upload_through_a_presigned_post_pinned_to_type_and_size(client):
    import base64
    import json as jsonlib

    import boto3

    m = client.member("mina@example.com")
    other = client.member("other@example.com")
    s = client.snack(m, "Choco Pie")
    assert client.call("GET", f"/snacks/snacks/{s['uid']}/image/", m).status == 404
    assert (
        client.call("POST", f"/snacks/snacks/{s['uid']}/image/", m, {"content_type": "text/html"}).status
        == 422
    )
    assert (
        client.call("POST", f"/snacks/snacks/{s['uid']}/image/", other, {"content_type": "image/png"}).status
        == 403
    )
    r = client.call("POST", f"/snacks/snacks/{s['uid']}/image/", m, {"content_type": "image/png"})
    assert r.status == 201, r
    grant = r.json()
    assert grant["key"].startswith(f"snacks/{s['uid']}/") and grant["key"].endswith(".png")
    policy = jsonlib.loads(base64.b64decode(grant["fields"]["policy"]))
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert ["content-length-range", 1, 5 * 1024 * 1024] in policy["conditions"]
    boto3.client("s3").put_object(
        Bucket="test-snacks-images", Key=grant["key"], Body=b"\x89PNG", ContentType="image/png"
    )
    shown = client.call("GET", f"/snacks/snacks/{s['uid']}/", m).json()
    assert shown["image"] == f"/snacks/snacks/{s['uid']}/image"
    redirect = client.call("GET", f"/snacks/snacks/{s['uid']}/image/", m)
    assert redirect.status == 307 and grant["key"] in redirect.headers["location"]
