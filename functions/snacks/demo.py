"""Local values, demo data and sample events of the snacks capability.

* ``secret_values()`` — the local cloud creates the catalog secret ``snacks-signing-keys`` from
  it: a fresh ES256 key per start (tokens of an earlier run no longer verify, as after a
  rotation that dropped their key). Put a fixed one in ``.opsdeck/secrets/snacks-signing-keys.json``
  to keep tokens across restarts.
* ``seed(cloud)`` — ``opsdeck local up --demo``: an admin (``admin@snacks.local`` /
  ``snacks-demo-admin``, created in the database: no HTTP route makes the first admin) and
  members signed up through the API, snacks, reactions and orders in several states, all
  through the local API Gateway; the flush schedule then fires once.
* ``sample_events()`` / ``write_sample_events()`` — ``events/snacks-*`` (``python -m
  functions.snacks.demo``); a unit test keeps the files equal to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ADMIN = ("admin@snacks.local", "snacks-demo-admin", "Demo Admin")
MEMBERS = [(f"member{i}@snacks.local", f"snacks-demo-member-{i}", f"Member {i}") for i in range(1, 5)]
SNACKS = [
    ("Choco Pie", "KRW", "4800"),
    ("Honey Butter Chip", "KRW", "1500"),
    ("Pepero", "KRW", "1700"),
    ("Kitkat", "USD", "1.25"),
    ("Shrimp Cracker", "KRW", "1200"),
    ("Matcha Cookie", "JPY", "350"),
]


def secret_values() -> dict[str, Any]:
    from .tokens import SECRET, new_secret_value

    return {SECRET: new_secret_value("local-1")}


def _create_admin(database_url: str) -> None:
    from opsdeck.db import create_engine

    from . import passwords, repository

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            repository.insert_user(conn, ADMIN[0], ADMIN[2], passwords.hash_password(ADMIN[1]), "admin")
    finally:
        engine.dispose()


def seed(cloud: Any) -> None:
    def call(method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        status, _headers, raw = cloud.request(method, path, headers=headers, body=body)
        if status >= 400:
            raise RuntimeError(f"snacks demo: {method} {path} → {status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    _create_admin(cloud.base_env["DATABASE_URL"])
    admin = call("POST", "/snacks/auth/token/", body={"username": ADMIN[0], "password": ADMIN[1]})["access"]
    members = []
    for email, password, name in MEMBERS:
        call("POST", "/snacks/auth/signup/", body={"email": email, "password": password, "name": name})
        members.append(
            call("POST", "/snacks/auth/token/", body={"username": email, "password": password})["access"]
        )
    uids = []
    for name, currency, price in SNACKS:
        snack = call(
            "POST",
            "/snacks/snacks/",
            members[0],
            {"name": name, "currency": currency, "price": price, "purchase_url": "https://shop.example.com/"},
        )
        uids.append(snack["uid"])
    # reactions: Choco Pie loved, Shrimp Cracker disliked (its order cannot be approved)
    pattern = {0: "llll", 1: "llh", 2: "lh", 4: "hhl", 5: "l"}
    for idx, kinds in pattern.items():
        for who, kind in enumerate(kinds):
            token = admin if who == 3 else members[who]
            call(
                "POST",
                f"/snacks/snacks/{uids[idx]}/reaction/",
                token,
                {"type": "like" if kind == "l" else "hate"},
            )
    o1 = call("POST", "/snacks/order/", members[0], {"items": [{"snack_uid": uids[0], "quantity": 3}]})
    o2 = call(
        "POST",
        "/snacks/order/",
        members[1],
        {"items": [{"snack_uid": uids[1], "quantity": 2}, {"snack_uid": uids[3], "quantity": 10}]},
    )
    call("POST", "/snacks/order/", members[2], {"items": [{"snack_uid": uids[4], "quantity": 1}]})
    call("PUT", f"/snacks/order/{o1['uid']}/", admin, {"status": "approved"})
    call(
        "PUT", f"/snacks/order/{o1['uid']}/", admin, {"status": "ordered", "estimated_arrival": "2026-12-24"}
    )
    call("PUT", f"/snacks/order/{o2['uid']}/", admin, {"status": "canceled"})
    print(
        f"snacks demo: {len(MEMBERS) + 1} users, {len(SNACKS)} snacks, 3 orders; sign in with "
        f'POST /snacks/auth/token/ {{"username": "{ADMIN[0]}", "password": "{ADMIN[1]}"}}'
    )


# ---------------------------------------------------------------- sample events

SAMPLE_WHEN = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SNACK_UID = "6f1c9a52-1f43-4d6e-9a57-1b2f0c3d4e5f"
ORDER_UID = "0b7e2d1c-5a4f-4e3b-8c2d-1a0f9e8d7c6b"
USER_UID = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"
TOKEN = "Bearer <access token from POST /snacks/auth/token/>"  # noqa: S105 (a placeholder)


def sample_events() -> dict[str, Any]:
    """``{relative path: event}`` for every snacks function and route."""
    from localcloud.events import http_event, schedule_event

    def ev(method: str, path: str, route: str, *, params=None, body=None, query="", auth=True) -> dict:
        headers = {"user-agent": "opsdeck-sample/1.0"}
        if auth:
            headers["authorization"] = TOKEN
        return http_event(
            method,
            path,
            route_key=f"{method} {route}",
            path_parameters=params,
            body=body,
            query=query,
            headers=headers,
            when=SAMPLE_WHEN,
            request_id="c2FtcGxlLXNuYWNrcw==",
        )

    s = "/snacks"
    flush = schedule_event("opsdeck-local-snacks-reactions-flush", when=SAMPLE_WHEN)
    flush["id"] = "5f0c7d9e-3b1a-4c2d-8e6f-0a1b2c3d4e5f"
    snack = {"snack_uid": SNACK_UID}
    order = {"order_uid": ORDER_UID}
    return {
        "snacks-api/signup.json": ev(
            "POST",
            f"{s}/auth/signup/",
            f"{s}/auth/signup",
            auth=False,
            body={"email": "mina@example.com", "password": "boatymcboatface", "name": "Mina"},
        ),
        "snacks-api/token.json": ev(
            "POST",
            f"{s}/auth/token/",
            f"{s}/auth/token",
            auth=False,
            body={"username": "mina@example.com", "password": "boatymcboatface"},
        ),
        "snacks-api/token-refresh.json": ev(
            "POST",
            f"{s}/auth/token/refresh/",
            f"{s}/auth/token/refresh",
            auth=False,
            body={"refresh": "<refresh token from POST /snacks/auth/token/>"},
        ),
        "snacks-api/jwks.json": ev(
            "GET", f"{s}/.well-known/jwks.json", f"{s}/.well-known/jwks.json", auth=False
        ),
        "snacks-api/me.json": ev("GET", f"{s}/users/me/", f"{s}/users/me"),
        "snacks-api/resign.json": ev("DELETE", f"{s}/users/me/", f"{s}/users/me"),
        "snacks-api/users.json": ev("GET", f"{s}/users/", f"{s}/users", query={"limit": "50"}),
        "snacks-api/promote.json": ev(
            "POST",
            f"{s}/users/{USER_UID}/promote/",
            f"{s}/users/{{user_uid}}/promote",
            params={"user_uid": USER_UID},
        ),
        "snacks-api/snacks.json": ev("GET", f"{s}/snacks/", f"{s}/snacks", query={"limit": "20"}),
        "snacks-api/snack-create.json": ev(
            "POST",
            f"{s}/snacks/",
            f"{s}/snacks",
            body={
                "name": "Choco Pie",
                "currency": "KRW",
                "price": "4800",
                "purchase_url": "https://shop.example.com/",
            },
        ),
        "snacks-api/snack.json": ev(
            "GET", f"{s}/snacks/{SNACK_UID}/", f"{s}/snacks/{{snack_uid}}", params=snack
        ),
        "snacks-api/react.json": ev(
            "POST",
            f"{s}/snacks/{SNACK_UID}/reaction/",
            f"{s}/snacks/{{snack_uid}}/reaction",
            params=snack,
            body={"type": "like"},
        ),
        "snacks-api/unreact.json": ev(
            "DELETE", f"{s}/snacks/{SNACK_UID}/reaction/", f"{s}/snacks/{{snack_uid}}/reaction", params=snack
        ),
        "snacks-api/image-upload.json": ev(
            "POST",
            f"{s}/snacks/{SNACK_UID}/image/",
            f"{s}/snacks/{{snack_uid}}/image",
            params=snack,
            body={"content_type": "image/png"},
        ),
        "snacks-api/image.json": ev(
            "GET", f"{s}/snacks/{SNACK_UID}/image/", f"{s}/snacks/{{snack_uid}}/image", params=snack
        ),
        "snacks-api/order-create.json": ev(
            "POST", f"{s}/order/", f"{s}/order", body={"items": [{"snack_uid": SNACK_UID, "quantity": 2}]}
        ),
        "snacks-api/orders-month.json": ev(
            "GET", f"{s}/orders/", f"{s}/orders", query={"year": "2026", "month": "12"}
        ),
        "snacks-api/order.json": ev(
            "GET", f"{s}/order/{ORDER_UID}/", f"{s}/order/{{order_uid}}", params=order
        ),
        "snacks-api/order-status.json": ev(
            "PUT",
            f"{s}/order/{ORDER_UID}/",
            f"{s}/order/{{order_uid}}",
            params=order,
            body={"status": "ordered", "estimated_arrival": "2026-12-10"},
        ),
        "snacks-api/statistics-month-week.json": ev(
            "GET", f"{s}/statistics/", f"{s}/statistics", query={"year": "2026", "month": "12", "week": "1"}
        ),
        "snacks-api/docs.json": ev("GET", f"{s}/docs", f"{s}/docs", auth=False),
        "snacks-api/docs-asset.json": ev(
            "GET",
            f"{s}/docs/swagger-ui.css",
            f"{s}/docs/{{asset}}",
            params={"asset": "swagger-ui.css"},
            auth=False,
        ),
        "snacks-api/openapi.json": ev("GET", f"{s}/openapi.json", f"{s}/openapi.json", auth=False),
        "snacks-reactions-flush/schedule.json": flush,
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
