"""Local values, demo data and sample events of the snacks capability.

* ``secret_values()`` — the local cloud creates the catalog secret ``snacks-signing-keys`` from
  it: a fresh ES256 key per start (tokens of an earlier run no longer verify, as after a
  rotation that dropped their key). Put a fixed one in ``.opsdeck/secrets/snacks-signing-keys.json``
  to keep tokens across restarts.
* ``seed(cloud)`` — ``opsdeck local up --demo``: an admin (``admin@snacks.local`` /
  ``snacks-demo-admin``, created in the database: no HTTP route makes the first admin) and
  members signed up through the API, snacks, reactions and orders in several states, all
  through the local API Gateway; the flush schedule then fires once.
* ``contract(cloud)`` / ``contract_auth(cloud)`` — the contract test's data and tokens
  (docs/http-api.md): rows under the uids the document's examples name, and a real sign-in.
* ``sample_events()`` / ``write_sample_events()`` — ``events/snacks-*`` (``python -m
  functions.snacks.demo``); a unit test keeps the files equal to it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
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


def _create_admin(database_url: str, admin: tuple[str, str, str] = ADMIN) -> None:
    from opsdeck.db import create_engine

    from . import passwords, repository

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            repository.insert_user(conn, admin[0], admin[2], passwords.hash_password(admin[1]), "admin")
    finally:
        engine.dispose()


def _caller(cloud: Any, source_ip: str = "127.0.0.1") -> Callable[..., Any]:
    """``call(method, path, token=None, body=None)`` through the local API Gateway; 4xx/5xx raise."""

    def call(method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        status, _headers, raw = cloud.request(method, path, headers=headers, body=body, source_ip=source_ip)
        if status >= 400:
            raise RuntimeError(f"snacks demo: {method} {path} → {status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    return call


def seed(cloud: Any) -> None:
    call = _caller(cloud)
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


# ------------------------------------------------------- contract test (docs/http-api.md)

#: the admin whose token the contract test sends to every snacks operation but resignation
CONTRACT_ADMIN = ("contract-admin@snacks.local", "snacks-contract-admin", "Contract Admin")
#: the member the document's examples name: the sign-in example's account, ``EXAMPLE_USER_UID``.
#: The seed never signs her in: the fuzzer's own sign-in attempts with her email (wrong passwords
#: first) spend her per-account sign-in budget, and the example's must still find some left
CONTRACT_MEMBER = ("mina@example.com", "boatymcboatface", "Mina")
#: the member who orders and reacts in the seed
CONTRACT_ORDERER = ("jun@contract.snacks.local", "snacks-contract-jun", "Jun")
#: the client address of the hook's own sign-ins (RFC 5737 documentation range): the fuzzer's
#: sign-in attempts from 127.0.0.1 spend that address's sign-in budget (429), not the hook's
CONTRACT_CLIENT_IP = "192.0.2.10"
#: the access token is refreshed when less than this is left of it (it lives SNACKS_ACCESS_TTL_S)
REFRESH_MARGIN_S = 60
#: a 1x1 PNG: the seeded snack's uploaded image (``GET …/image`` answers its 307)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _reassign_uid(cloud: Any, table: str, uid: str, example: str) -> None:
    """Give a row made through the API the uid the document's examples name (the one thing the
    API cannot be asked for: uids are the database's ``gen_random_uuid()``)."""
    from sqlalchemy import text

    from opsdeck.db import create_engine

    assert table in ("users", "snacks", "orders")
    engine = create_engine(cloud.base_env["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(
                text(f"UPDATE snacks.{table} SET uid = CAST(:new AS uuid) WHERE uid = CAST(:old AS uuid)"),
                {"new": example, "old": uid},
            )
    finally:
        engine.dispose()


def contract(cloud: Any) -> None:
    """What the document's examples look up, made through the API (docs/http-api.md):

    * ``EXAMPLE_USER_UID`` — Mina, a member (the sign-in example's account; promote's example);
    * ``EXAMPLE_SNACK_UID`` — Choco Pie, with an uploaded image, liked by Jun and hated by the
      contract admin (the reaction example switches it, the cancel example has one to cancel);
      in no open order (the order example requests it);
    * ``EXAMPLE_ORDER_UID`` — Jun's order of Pepero, approved (the status example moves it on to
      ordered), and a completed order of Kitkat for the statistics.
    """
    import httpx

    from .api import EXAMPLE_ORDER_UID, EXAMPLE_SNACK_UID, EXAMPLE_USER_UID

    call = _caller(cloud, CONTRACT_CLIENT_IP)
    _create_admin(cloud.base_env["DATABASE_URL"], CONTRACT_ADMIN)
    signed_up = {}
    for email, password, name in (CONTRACT_MEMBER, CONTRACT_ORDERER):
        body = {"email": email, "password": password, "name": name}
        signed_up[email] = call("POST", "/snacks/auth/signup/", body=body)
    _reassign_uid(cloud, "users", signed_up[CONTRACT_MEMBER[0]]["uid"], EXAMPLE_USER_UID)
    admin = call(
        "POST", "/snacks/auth/token/", body={"username": CONTRACT_ADMIN[0], "password": CONTRACT_ADMIN[1]}
    )
    jun = call(
        "POST", "/snacks/auth/token/", body={"username": CONTRACT_ORDERER[0], "password": CONTRACT_ORDERER[1]}
    )["access"]
    admin = admin["access"]
    uids = {}
    for snack_name, currency, price in SNACKS[:4]:
        body = {
            "name": snack_name,
            "currency": currency,
            "price": price,
            "purchase_url": "https://shop.example.com/",
        }
        uids[snack_name] = call("POST", "/snacks/snacks/", admin, body)["uid"]
    _reassign_uid(cloud, "snacks", uids["Choco Pie"], EXAMPLE_SNACK_UID)
    choco = f"/snacks/snacks/{EXAMPLE_SNACK_UID}"
    call("POST", f"{choco}/reaction/", jun, {"type": "like"})
    call("POST", f"{choco}/reaction/", admin, {"type": "hate"})
    grant = call("POST", f"{choco}/image/", admin, {"content_type": "image/png"})
    posted = httpx.post(grant["url"], data=grant["fields"], files={"file": ("choco.png", PNG, "image/png")})
    if posted.status_code >= 300:
        raise RuntimeError(f"snacks contract: image upload → {posted.status_code} {posted.text[:200]!r}")
    order = call("POST", "/snacks/order/", jun, {"items": [{"snack_uid": uids["Pepero"], "quantity": 3}]})
    _reassign_uid(cloud, "orders", order["uid"], EXAMPLE_ORDER_UID)
    call("PUT", f"/snacks/order/{EXAMPLE_ORDER_UID}/", admin, {"status": "approved"})
    done = call("POST", "/snacks/order/", jun, {"items": [{"snack_uid": uids["Kitkat"], "quantity": 4}]})
    for status in ("approved", "ordered", "shipping", "completed"):
        change: dict[str, Any] = {"status": status}
        if status in ("ordered", "shipping"):
            change["estimated_arrival"] = "2026-12-24"
        call("PUT", f"/snacks/order/{done['uid']}/", admin, change)


class _ContractTokens:
    """Real snacks access tokens for the contract test, per request (``token(method, path)``).

    * every operation gets the contract admin's token (role ``admin``: every check of the API
      passes it), signed in once and refreshed through ``POST /snacks/auth/token/refresh`` when
      less than ``REFRESH_MARGIN_S`` is left of it, so it stays valid however long the run takes;
    * ``DELETE /snacks/users/me`` (resign) gets a member signed up and signed in for that one
      request: a resignation ends every token of its user, and the admin's must outlive the run.
      The last-admin rule (409) is the accounts tests' (tests/integration/snacks).
    """

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.call = _caller(cloud, CONTRACT_CLIENT_IP)
        self.pair = self._sign_in(CONTRACT_ADMIN[0], CONTRACT_ADMIN[1])
        self.resigners = 0

    def _sign_in(self, email: str, password: str) -> dict[str, str]:
        return self.call("POST", "/snacks/auth/token/", body={"username": email, "password": password})

    def token(self, method: str, path: str) -> str:
        if (method.upper(), path) == ("DELETE", "/snacks/users/me"):
            self.resigners += 1
            # a new email each time (a resigned one can never sign up again)
            email, password = f"resigner-{uuid.uuid4().hex[:12]}@contract.snacks.local", "contract-resigner"
            self.call(
                "POST", "/snacks/auth/signup/", body={"email": email, "password": password, "name": "R"}
            )
            # each from an address of its own (RFC 5737 TEST-NET-2): one person, one device
            call = _caller(self.cloud, f"198.51.100.{(self.resigners - 1) % 254 + 1}")
            return call("POST", "/snacks/auth/token/", body={"username": email, "password": password})[
                "access"
            ]
        if _expires_at(self.pair["access"]) - time.time() < REFRESH_MARGIN_S:
            self.pair = self.call(
                "POST", "/snacks/auth/token/refresh/", body={"refresh": self.pair["refresh"]}
            )
        return self.pair["access"]


def _expires_at(token: str) -> float:
    import jwt

    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def contract_auth(cloud: Any) -> Callable[[str, str], str]:
    """``token(method, path)``: the bearer token the contract test sends to one snacks request
    (snacks is its own issuer: the test's shared token is not one of its tokens)."""
    return _ContractTokens(cloud).token


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
