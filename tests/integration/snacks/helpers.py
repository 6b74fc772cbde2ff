"""Call ``snacks-api`` through its Lambda entry point with API Gateway HTTP API v2 events."""

from __future__ import annotations

import json
from typing import Any

from localcloud.events import http_event
from tests.support import LambdaContext

ADMIN_PASSWORD = "admin-password-1"


class Response:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.status = raw["statusCode"]
        self.headers = raw.get("headers", {})
        self.text = raw.get("body", "")

    def json(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.text[:300]}>"


class Client:
    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        query: Any = "",
        ip: str = "10.0.0.1",
    ) -> Response:
        from functions.snacks import api

        headers = {"authorization": f"Bearer {token}"} if token else {}
        event = http_event(method, path, body=body, query=query, headers=headers, source_ip=ip)
        return Response(api.handler(event, LambdaContext("snacks-api")))

    def sign_up(self, email: str, password: str = "password-123", name: str = "Someone") -> Response:  # noqa: S107
        return self.call(
            "POST", "/snacks/auth/signup/", body={"email": email, "password": password, "name": name}
        )

    def sign_in(self, email: str, password: str = "password-123", ip: str = "10.0.0.1") -> Response:  # noqa: S107
        return self.call("POST", "/snacks/auth/token/", body={"username": email, "password": password}, ip=ip)

    def member(self, email: str) -> str:
        assert self.sign_up(email).status == 201
        r = self.sign_in(email)
        assert r.status == 200, r
        return r.json()["access"]

    def admin(self, email: str = "admin@example.com") -> str:
        """An admin account (the first admin is made in the database, as the demo does)."""
        from functions.snacks import passwords, repository
        from opsdeck import db

        with db.transaction() as conn:
            repository.insert_user(conn, email, "Admin", passwords.hash_password(ADMIN_PASSWORD), "admin")
        r = self.sign_in(email, ADMIN_PASSWORD)
        assert r.status == 200, r
        return r.json()["access"]

    def snack(self, token: str, name: str, currency: str = "KRW", price: str = "1000") -> dict:
        r = self.call("POST", "/snacks/snacks/", token, {"name": name, "currency": currency, "price": price})
        assert r.status == 201, r
        return r.json()

    def order(self, token: str, *items: tuple[str, int]) -> Response:
        return self.call(
            "POST", "/snacks/order/", token, {"items": [{"snack_uid": u, "quantity": q} for u, q in items]}
        )

    def react(self, token: str, snack_uid: str, kind: str | None) -> Response:
        if kind is None:
            return self.call("DELETE", f"/snacks/snacks/{snack_uid}/reaction/", token)
        return self.call("POST", f"/snacks/snacks/{snack_uid}/reaction/", token, {"type": kind})

    def status(self, token: str, order_uid: str, status: str, eta: str | None = None) -> Response:
        body: dict[str, Any] = {"status": status}
        if eta:
            body["estimated_arrival"] = eta
        return self.call("PUT", f"/snacks/order/{order_uid}/", token, body)
