"""The ops console's API on the local cloud (``local_cloud``: real catalog, virtual clock), through
the local API Gateway and the real ``ops-api`` handler, with tokens from the local dev issuer."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

QUEUE, DLQ = "backoffice-changes", "backoffice-changes-dlq"
ACT = {"x-opsdeck-console": "1", "sec-fetch-site": "same-origin"}


def bearer(*roles: str, sub: str = "alice") -> dict[str, str]:
    from opsdeck.auth import issue_dev_token

    return {"authorization": f"Bearer {issue_dev_token(sub, list(roles))}"}


def call(cloud, method: str, path: str, *, roles=("ops-admin",), headers=None, **kwargs):
    all_headers = {**bearer(*roles), **(ACT if method == "POST" else {}), **(headers or {})}
    status, response_headers, body = cloud.request(method, path, headers=all_headers, **kwargs)
    return status, response_headers, json.loads(body) if body else None


def test_every_console_route_needs_a_token_and_a_role(local_cloud):
    for path in (
        "/ops/whoami",
        "/ops/overview",
        "/ops/queues",
        "/ops/schedules",
        "/ops/invocations",
        "/ops/series",
        f"/ops/queues/{DLQ}/messages",
    ):
        status, headers, _ = local_cloud.request("GET", path)
        assert status == 401, path
        assert headers["content-type"] == "application/problem+json"
        status, _, body = call(local_cloud, "GET", path, roles=("ADMIN_READ",))
        assert status == 403, path
    status, _, body = call(local_cloud, "GET", "/ops/whoami", roles=("ops-viewer",))
    assert status == 200
    assert body == {"subject": "alice", "roles": ["ops-viewer"], "can_act": False, "mode": "local"}


def test_viewers_cannot_act_and_actions_refuse_cross_site_requests(local_cloud):
    path = "/ops/schedules/marketplace-orders-schedule/disable"
    status, _, body = call(local_cloud, "POST", path, roles=("ops-viewer",))
    assert status == 403
    status, _, body = call(local_cloud, "POST", path, headers={"x-opsdeck-console": ""})
    assert status == 422  # the header is required (the document says so): a cross-site form cannot send it
    assert body["errors"][0]["loc"] == ["header", "x-opsdeck-console"]
    for headers, reason in (
        ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site"),
        ({"origin": "https://evil.example"}, "Origin"),
    ):
        status, _, body = call(local_cloud, "POST", path, headers=headers)
        assert status == 403, headers
        assert body["type"].endswith("/cross-site-request")
        assert reason in body["detail"]
    # nothing happened
    status, _, body = call(local_cloud, "GET", "/ops/schedules", roles=("ops-viewer",))
    assert {s["name"]: s["state"] for s in body["schedules"]}["marketplace-orders-schedule"] == "ENABLED"
    # the same request from the page itself is accepted
    status, _, body = call(local_cloud, "POST", path, headers={"origin": "http://localhost"})
    assert status == 200
    assert body["state"] == "DISABLED"


def test_overview_lists_the_catalog_with_last_hours_numbers_and_health(local_cloud):
    for _ in range(3):
        assert local_cloud.request("GET", "/ops/functions")[0] == 200
    status, _, body = call(local_cloud, "GET", "/ops/overview", roles=("ops-viewer",))
    assert status == 200
    assert body["mode"] == "local"
    assert body["health"]["status"] == "ok"
    functions = {f["name"]: f for c in body["capabilities"] for f in c["functions"]}
    assert {"ops-api", "backoffice-consumer", "marketplace-orders-sync"} <= set(functions)
    ops = functions["ops-api"]["last_hour"]
    assert ops["invocations"] >= 3  # the three catalog reads (and this request is not finished yet)
    assert ops["errors"] == 0
    assert ops["p95_ms"] > 0
    assert functions["backoffice-consumer"]["trigger"]["kind"] == "queue"


def test_a_poison_message_is_seen_with_its_reason_replayed_after_the_fix_and_applied_once(local_cloud):
    from opsdeck import db

    with db.transaction() as conn:
        conn.execute(
            text(
                "ALTER TABLE bo.ledger_entries "
                "ADD CONSTRAINT console_blocked CHECK (wallet_id <> 'w-blocked')"
            )
        )
    change = {
        "op": "c",
        "before": None,
        "after": {
            "tx_id": "t-console",
            "wallet_id": "w-blocked",
            "type": "PAYMENT",
            "amount": 1000,
            "currency": "KRW",
            "status": "SETTLED",
            "related_id": "po-console",
            "created_at": "2026-01-01T00:00:00Z",
            "version": 1,
        },
        "source": {"table": "ledger_entries", "ts_ms": 1_767_225_600_000, "lsn": 10},
    }
    message_id = local_cloud.send(QUEUE, change)
    local_cloud.run_until_idle(max_seconds=6 * 3600)

    status, _, body = call(local_cloud, "GET", "/ops/queues", roles=("ops-viewer",))
    queues = {q["name"]: q for q in body["queues"]}
    assert (queues[DLQ]["visible"], queues[DLQ]["in_flight"]) == (1, 0)
    assert queues[DLQ]["dlq"] is True and queues[DLQ]["source"] == QUEUE
    assert queues[DLQ]["oldest_age_s"] >= 5 * 360  # five receives, each after the visibility timeout
    assert queues[QUEUE]["visible"] == 0

    status, _, body = call(local_cloud, "GET", f"/ops/queues/{DLQ}/messages", roles=("ops-viewer",))
    [message] = body["messages"]
    assert message["message_id"] == message_id
    assert json.loads(message["body"]) == change
    assert message["receive_count"] == 5
    assert "console_blocked" in message["failure"]
    assert message["attributes"]["DeadLetterQueueSourceArn"].endswith(":backoffice-changes")

    status, _, body = call(local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={"dry_run": True})
    assert status == 200
    assert (body["matched"], body["moved"]) == (1, 0)
    with db.transaction() as conn:
        conn.execute(text("ALTER TABLE bo.ledger_entries DROP CONSTRAINT console_blocked"))  # the fix
    status, _, body = call(
        local_cloud,
        "POST",
        f"/ops/queues/{DLQ}/replay",
        body={"filter": "after.wallet_id == 'w-blocked'", "limit": 5, "rate": "50/s"},
    )
    assert status == 200
    assert (body["matched"], body["moved"], body["method"]) == (1, 1, "receive-send-delete")
    assert body["message_ids"] == [message_id]
    local_cloud.run_until_idle(max_seconds=600)
    assert local_cloud.depth(DLQ) == (0, 0)
    with db.transaction() as conn:
        rows = conn.execute(text("SELECT count(*) FROM bo.ledger_entries WHERE tx_id = 't-console'")).scalar()
        audit = conn.execute(
            text("SELECT subject, roles, action, target, params, outcome FROM ops.audit ORDER BY id")
        ).all()
    assert rows == 1
    assert [(a.subject, a.action, a.target, a.outcome) for a in audit] == [
        ("alice", "replay", DLQ, "ok"),
        ("alice", "replay", DLQ, "ok"),
    ]
    assert audit[1].params["filter"] == "after.wallet_id == 'w-blocked'"
    assert audit[0].roles == ["ops-admin"]
    status, _, body = call(local_cloud, "GET", "/ops/audit")
    assert [a["action"] for a in body["actions"]] == ["replay", "replay"]


def test_replay_refuses_what_the_cli_refuses(local_cloud):
    status, _, body = call(local_cloud, "POST", f"/ops/queues/{QUEUE}/replay", body={})
    assert status == 404
    assert "not a dead-letter queue" in body["detail"]
    status, _, body = call(local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={"filter": "kind =="})
    assert status == 422
    assert "invalid --filter" in body["detail"]
    status, _, body = call(local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={"rate": "fast"})
    assert status == 422
    status, _, body = call(local_cloud, "POST", "/ops/queues/no-such-dlq/replay", body={})
    assert status == 404
    from opsdeck import db

    with (
        db.transaction() as conn
    ):  # refused actions are audited with the problem's type (bad bodies never ran)
        outcomes = conn.execute(text("SELECT target, outcome FROM ops.audit ORDER BY id")).all()
    assert [tuple(o) for o in outcomes] == [
        (QUEUE, "not-found"),
        (DLQ, "replay"),
        ("no-such-dlq", "not-found"),
    ]


def test_a_replays_progress_is_readable_by_a_viewer_while_it_runs_then_its_outcome(local_cloud):
    import threading
    import time
    import uuid

    ids = {local_cloud.send(DLQ, {"n": i}) for i in range(6)}
    replay_id = str(uuid.uuid4())
    posted: dict = {}

    def post() -> None:  # chunks of 2 leave at 1 s, 2 s and 3 s
        posted["response"] = call(
            local_cloud,
            "POST",
            f"/ops/queues/{DLQ}/replay",
            body={"filter": "n >= `0`", "rate": "2/s", "replay_id": replay_id},
        )

    runner = threading.Thread(target=post)
    runner.start()
    states = []
    deadline = time.monotonic() + 30
    while runner.is_alive() and time.monotonic() < deadline:
        status, _, body = call(local_cloud, "GET", f"/ops/replays/{replay_id}", roles=("ops-viewer",))
        if status == 200:
            states.append(body)
        else:
            assert status == 404  # the POST has not stored it yet
        time.sleep(0.05)
    runner.join(30)
    status, _, result = posted["response"]
    assert status == 200, result
    assert (result["matched"], result["moved"], result["replay_id"]) == (6, 6, replay_id)

    during = [s for s in states if not s["done"] and 0 < s["moved"] < 6]
    assert during, [(s["moved"], s["done"]) for s in states]  # seen part-way, before the answer
    for state in during:
        assert (state["examined"], state["total"], state["matched"]) == (6, 6, 6)
        assert len(state["message_ids"]) == state["moved"] and set(state["message_ids"]) <= ids
        assert state["outcome"] is None and state["stalled"] is False
    moved = [s["moved"] for s in states]
    assert moved == sorted(moved)  # never backwards

    status, _, final = call(local_cloud, "GET", f"/ops/replays/{replay_id}", roles=("ops-viewer",))
    assert status == 200
    assert (final["done"], final["outcome"], final["error"], final["moved"]) == (True, "ok", None, 6)
    assert set(final["message_ids"]) == ids
    assert final["audit_id"] == result["audit_id"]
    assert final["result"]["message_ids"] == result["message_ids"]
    assert final["params"] == {
        "to": None,
        "filter": "n >= `0`",
        "limit": None,
        "dry_run": False,
        "rate": "2/s",
    }

    # the id is the replay's: used again, it is refused and the first replay's record stays
    status, _, body = call(local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={"replay_id": replay_id})
    assert status == 409
    assert call(local_cloud, "GET", f"/ops/replays/{replay_id}", roles=("ops-viewer",))[2] == final
    from opsdeck import db

    with db.transaction() as conn:
        audit = conn.execute(text("SELECT id, params, outcome FROM ops.audit ORDER BY id")).all()
    assert [(a.id, a.params["replay_id"], a.outcome) for a in audit] == [
        (result["audit_id"], replay_id, "ok"),
        (result["audit_id"] + 1, replay_id, "conflict"),
    ]


def test_a_refused_replays_progress_says_why_and_unknown_ids_are_not_found(local_cloud):
    import uuid

    replay_id = str(uuid.uuid4())
    status, _, body = call(
        local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={"filter": "kind ==", "replay_id": replay_id}
    )
    assert status == 422
    status, _, state = call(local_cloud, "GET", f"/ops/replays/{replay_id}", roles=("ops-viewer",))
    assert status == 200
    assert (state["done"], state["outcome"], state["result"]) == (True, "replay", None)
    assert state["error"].startswith("invalid --filter 'kind =='")
    status, _, body = call(local_cloud, "GET", "/ops/replays/not-a-uuid", roles=("ops-viewer",))
    assert status == 422
    status, _, body = call(local_cloud, "GET", f"/ops/replays/{uuid.uuid4()}", roles=("ops-viewer",))
    assert status == 404
    assert body["type"].endswith("/not-found")
    assert local_cloud.request("GET", f"/ops/replays/{replay_id}")[0] == 401
    assert call(local_cloud, "GET", f"/ops/replays/{replay_id}", roles=("ADMIN_READ",))[0] == 403
    # reading progress is a viewer's; replaying stays an admin's
    assert call(local_cloud, "POST", f"/ops/queues/{DLQ}/replay", body={}, roles=("ops-viewer",))[0] == 403


def test_a_disabled_schedule_does_not_fire_and_fire_now_runs_it_anyway(local_cloud):
    name, function = "marketplace-inventory-schedule", "marketplace-inventory-sync"

    def runs() -> int:
        return sum(j["function"] == function and j["trigger"] == "schedule" for j in local_cloud.journal())

    status, _, body = call(local_cloud, "POST", f"/ops/schedules/{name}/disable")
    assert (status, body["state"], body["next_fire"]) == (200, "DISABLED", None)
    local_cloud.advance(2 * 3600)
    assert runs() == 0
    status, _, body = call(local_cloud, "POST", f"/ops/schedules/{name}/fire")
    assert status == 202
    assert body["function"] == function
    local_cloud.advance(0)
    assert runs() == 1
    status, _, body = call(local_cloud, "GET", "/ops/schedules", roles=("ops-viewer",))
    listed = {s["name"]: s for s in body["schedules"]}[name]
    assert listed["state"] == "DISABLED"
    assert listed["last_fire"] is not None
    assert listed["expression"] == "rate(30 minutes)"
    status, _, body = call(local_cloud, "POST", f"/ops/schedules/{name}/enable")
    assert body["state"] == "ENABLED" and body["next_fire"] is not None
    local_cloud.advance(1800)
    assert runs() == 2
    status, _, body = call(local_cloud, "POST", "/ops/schedules/no-such-schedule/fire")
    assert status == 404


def test_invocations_filter_detail_and_reinvoke(local_cloud):
    local_cloud.request("GET", "/ops/functions")
    local_cloud.request("GET", "/ops/no-such-route")  # 404 at the gateway: not an invocation
    status, _, body = call(
        local_cloud,
        "GET",
        "/ops/invocations",
        roles=("ops-viewer",),
        query={"function": "ops-api", "trigger": "http", "limit": 5},
    )
    assert status == 200
    newest = body["invocations"][0]
    assert newest["route"] == "GET /ops/functions"
    assert all(i["function"] == "ops-api" for i in body["invocations"])
    status, _, detail = call(
        local_cloud, "GET", f"/ops/invocations/{newest['request_id']}", roles=("ops-viewer",)
    )
    assert detail["event"]["rawPath"] == "/ops/functions"
    assert detail["result"]["statusCode"] == 200
    assert isinstance(detail["logs"], list)
    status, _, body = call(local_cloud, "POST", f"/ops/invocations/{newest['request_id']}/reinvoke")
    assert status == 200
    assert (body["function"], body["outcome"]) == ("ops-api", "ok")
    assert body["result"]["statusCode"] == 200
    again = [j for j in local_cloud.journal() if j["request_id"] == body["request_id"]]
    assert again and again[0]["trigger"] == "invoke"
    status, _, body = call(
        local_cloud, "GET", "/ops/invocations", roles=("ops-viewer",), query={"hide_console": "true"}
    )
    routes = {i.get("route") for i in body["invocations"]}
    assert "GET /ops/functions" in routes and "GET /ops/invocations" not in routes
    status, _, body = call(local_cloud, "GET", "/ops/invocations", roles=("ops-viewer",))
    assert "GET /ops/invocations" in {i.get("route") for i in body["invocations"]}
    status, _, _ = call(local_cloud, "GET", "/ops/invocations", query={"outcome": "weird"})
    assert status == 422
    status, _, _ = call(local_cloud, "GET", "/ops/invocations/not-a-request")
    assert status == 404


def test_series_count_per_minute_and_sample_queue_depth(local_cloud):
    for _ in range(4):
        local_cloud.request("GET", "/ops/functions")
    local_cloud.send(QUEUE, '{"op": "c", "after": ')
    status, _, body = call(local_cloud, "GET", "/ops/series", roles=("ops-viewer",), query={"minutes": 10})
    assert status == 200
    assert len(body["minutes"]) == 10
    assert sum(body["invocations"]["ops-api"]) >= 4
    assert body["queue_depth"][QUEUE][-1][1:] == [1, 0]


def test_the_page_ships_with_a_strict_policy(local_cloud):
    status, headers, body = local_cloud.request("GET", "/ops/console")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert b"<script>" not in body and b'src="/ops/console/console.js"' in body
    status, headers, body = local_cloud.request("GET", "/ops/console/console.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert local_cloud.request("GET", "/ops/console/secret.js")[0] == 404
    assert local_cloud.request("GET", "/ops/console/..%2Fapi.py")[0] in (404, 422)


def test_the_local_page_carries_an_ops_admin_token_only_for_loopback_hosts(local_cloud):
    from localcloud.server import console_page
    from opsdeck.auth import verify

    status, headers, body = console_page("127.0.0.1:3000")
    assert status == 200
    assert "default-src 'self'" in headers["content-security-policy"]
    token = body.split(b'name="opsdeck-token" content="')[1].split(b'"')[0].decode()
    principal = verify(token)
    assert (principal.subject, set(principal.roles)) == ("local-console", {"ops-admin"})
    status, _, body = console_page("rebound.example:3000")
    assert status == 403 and b"opsdeck-token" not in body


@pytest.mark.parametrize("path", ["/ops/health", "/ops/functions"])
def test_health_and_catalog_stay_public(local_cloud, path):
    assert local_cloud.request("GET", path)[0] == 200


def test_the_contract_hook_seeds_the_invocation_the_documents_examples_name(local_cloud):
    from functions.ops import demo
    from functions.ops.models import EXAMPLE_REQUEST_ID

    demo.contract(local_cloud)
    status, _, body = call(
        local_cloud, "GET", f"/ops/invocations/{EXAMPLE_REQUEST_ID}", roles=demo.CONTRACT_ROLES
    )
    assert status == 200 and body["result"]["statusCode"] == 200
    status, _, body = call(
        local_cloud, "POST", f"/ops/invocations/{EXAMPLE_REQUEST_ID}/reinvoke", roles=demo.CONTRACT_ROLES
    )
    assert (status, body["outcome"]) == (200, "ok")
    assert "demo data: ops" not in local_cloud.seed_demo()  # nothing to seed for the demo itself
