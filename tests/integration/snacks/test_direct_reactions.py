"""The reaction routes answered directly (``opsdeck.api.Direct``) answer exactly as the app does.

One script of reaction requests — successes, 409, 404, 401s, and requests the direct route must
pass on to the app (invalid bodies, another content type, a CORS request, ...) — runs once through
``api.handler`` and once through ``api.handler.via_app`` (the same entry point without direct
routes), each on its own snack with its own members; every answer (status, headers, body) must
be equal, and the direct route must have answered exactly the requests it claims.
"""

from __future__ import annotations

import contextlib
import json

import mangum
import pytest

from localcloud.events import http_event
from tests.support import LambdaContext

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _script(uid: str, token: str, other: str, resigned: str) -> list[tuple[bool, dict]]:
    """(answered directly?, event) — ``uid`` is the run's snack."""
    path = f"/snacks/snacks/{uid}/reaction"
    auth = {"authorization": f"Bearer {token}"}

    def ev(
        method: str, p: str = path, *, direct: bool, headers: dict | None = None, **kw
    ) -> tuple[bool, dict]:
        rid = f"rid-{len(steps)}"
        return direct, http_event(
            method, p, headers=auth if headers is None else headers, request_id=rid, **kw
        )

    steps: list[tuple[bool, dict]] = []
    for step in [
        lambda: ev("POST", direct=True, body={"type": "like"}),
        lambda: ev("POST", path + "/", direct=True, body={"type": "like"}),  # 409 cannot react twice
        lambda: ev(
            "POST",
            path.upper().replace("/SNACKS/SNACKS/", "/snacks/snacks/").replace("/REACTION", "/reaction"),
            direct=True,
            body={"type": "hate"},
        ),  # upper-case uid: the switch
        lambda: ev("POST", direct=True, body={"type": "like"}, headers={**auth, "x-request-id": "mine-1"}),
        lambda: ev("DELETE", path + "/", direct=True),
        lambda: ev("DELETE", direct=True),  # 404 nothing to cancel
        lambda: ev("POST", f"/snacks/snacks/{UNKNOWN}/reaction", direct=True, body={"type": "like"}),
        lambda: ev("POST", direct=True, body={"type": "like"}, headers={}),  # 401 no token
        lambda: ev("POST", direct=True, body={"type": "like"}, headers={"authorization": "Bearer nope"}),
        lambda: ev(
            "POST", direct=True, body={"type": "like"}, headers={"authorization": f"Bearer {resigned}"}
        ),
        lambda: ev("POST", direct=True, body={"type": "hate"}, headers={"authorization": f"Bearer {other}"}),
        # passed on to the app
        lambda: ev("POST", direct=False, body='{"type": "like"}'),  # no content type: 422
        lambda: ev("POST", direct=False, body={"type": "like", "extra": 1}),  # 422
        lambda: ev("POST", direct=False, body={"type": "meh"}),  # 422
        lambda: ev("POST", direct=False, body=["like"]),  # 422
        lambda: ev(
            "POST", direct=False, body="{not json", headers={**auth, "content-type": "application/json"}
        ),
        lambda: ev(
            "POST", direct=False, body='{"type": "like"}', headers={**auth, "content-type": "text/plain"}
        ),
        lambda: ev("POST", direct=False),  # no body: 422
        lambda: ev("POST", "/snacks/snacks/not-a-uid/reaction", direct=False, body={"type": "like"}),
        lambda: ev("DELETE", direct=False, body="x"),
        lambda: ev(
            "POST", direct=False, body={"type": "hate"}, headers={**auth, "origin": "https://x.example"}
        ),
        lambda: ev("PUT", direct=False, body={"type": "like"}),  # 405
    ]:
        steps.append(step())
    return steps


@pytest.fixture
def app_calls(monkeypatch) -> list[str]:
    """Paths of the requests the ASGI app (through Mangum) answered."""
    calls: list[str] = []
    original = mangum.Mangum.__call__

    def spy(self, event, context):
        calls.append(event["requestContext"]["requestId"])
        return original(self, event, context)

    monkeypatch.setattr(mangum.Mangum, "__call__", spy)
    return calls


def _normal(raw: dict, uid: str) -> dict:
    body = raw.get("body", "")
    with contextlib.suppress(ValueError):
        body = json.loads(body.replace(uid, "<uid>").replace(uid.upper(), "<uid>"))
    headers = dict(raw.get("headers") or {})
    if "content-length" in headers:  # the uid is in the body either way; compare the rest
        headers["content-length"] = "n"
    return {**raw, "body": body, "headers": headers}


def test_direct_reaction_answers_equal_the_apps(client, app_calls):
    from functions.snacks import api

    answers: dict[str, list[dict]] = {}
    for name, entry in (("direct", api.handler), ("app", api.handler.via_app)):
        member = client.member(f"{name}@example.com")
        other = client.member(f"{name}-other@example.com")
        resigned = client.member(f"{name}-gone@example.com")
        assert client.call("DELETE", "/snacks/users/me/", resigned).status == 204
        uid = client.snack(member, f"Snack {name}")["uid"]
        app_calls.clear()
        steps = _script(uid, member, other, resigned)
        answers[name] = [_normal(entry(event, LambdaContext("snacks-api")), uid) for _direct, event in steps]
        if name == "direct":
            expected_via_app = [e["requestContext"]["requestId"] for d, e in steps if not d]
            assert app_calls == expected_via_app
        else:
            assert len(app_calls) == len(steps)
    for i, (direct, app) in enumerate(zip(answers["direct"], answers["app"], strict=True)):
        assert direct == app, f"step {i}"
    statuses = [a["statusCode"] for a in answers["direct"]]
    assert statuses[:12] == [200, 409, 200, 200, 200, 404, 404, 401, 401, 401, 200, 422]
    assert answers["direct"][3]["headers"]["x-request-id"] == "mine-1"
    assert answers["direct"][1]["body"]["instance"] == "/snacks/snacks/<uid>/reaction"
    assert answers["direct"][7]["headers"]["www-authenticate"] == "Bearer"


def test_an_unexpected_error_in_a_direct_route_is_the_apps_500(client, monkeypatch, app_calls):
    from functions.snacks import api, service

    member = client.member("boom@example.com")
    uid = client.snack(member, "Boom")["uid"]

    def boom(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "react", boom)
    event = http_event(
        "POST",
        f"/snacks/snacks/{uid}/reaction",
        body={"type": "like"},
        headers={"authorization": f"Bearer {member}"},
        request_id="rid-boom",
    )
    app_calls.clear()
    direct = api.handler(event, LambdaContext("snacks-api"))
    assert app_calls == []
    app = api.handler.via_app(event, LambdaContext("snacks-api"))
    assert direct == app
    assert direct["statusCode"] == 500 and json.loads(direct["body"])["request_id"] == "rid-boom"
