"""The ops console in a real browser (Debian's chromium), against the whole catalog in the local
cloud: the page loads clean under its CSP, and an operator's four everyday stories work."""

from __future__ import annotations

import json

from sqlalchemy import text

QUEUE, DLQ = "backoffice-changes", "backoffice-changes-dlq"


def test_the_page_loads_every_view_with_no_console_errors(console):
    console.open("application")
    console.wait_for(lambda d: d.find_elements("css selector", '#capabilities tr[data-function="ops-api"]'))
    assert console.css("#mode").text == "local"
    assert "local-console" in console.css("#who").text
    assert console.css("#health b").text == "ok"
    for view in ("queues", "schedules", "invocations", "charts", "application"):
        console.show(view)
        stamp = console.css("body").get_attribute("data-refreshed")
        console.wait_for(
            lambda d, s=stamp: d.find_element("css selector", "body").get_attribute("data-refreshed") != s
        )
    console.wait_for(
        lambda d: d.find_elements("css selector", '#queues-table tr[data-queue="backoffice-changes-dlq"]')
    )
    assert console.errors() == []


def test_a_poison_message_is_seen_and_replayed_from_the_page_after_the_fix_once(console):
    from opsdeck import db

    cloud = console.cloud
    with db.transaction() as conn:
        conn.execute(
            text(
                "ALTER TABLE bo.ledger_entries "
                "ADD CONSTRAINT browser_blocked CHECK (wallet_id <> 'w-blocked')"
            )
        )
    change = {
        "op": "c",
        "before": None,
        "after": {
            "tx_id": "t-browser",
            "wallet_id": "w-blocked",
            "type": "PAYMENT",
            "amount": 1000,
            "currency": "KRW",
            "status": "SETTLED",
            "related_id": "po-browser",
            "created_at": "2026-01-01T00:00:00Z",
            "version": 1,
        },
        "source": {"table": "ledger_entries", "ts_ms": 1_767_225_600_000, "lsn": 10},
    }
    message_id = cloud.send(QUEUE, change)
    cloud.run_until_idle(max_seconds=6 * 3600)
    assert cloud.depth(DLQ) == (1, 0)

    console.open("queues")
    dlq_visible = f'#queues-table tr[data-queue="{DLQ}"] td.visible'
    console.wait_for(lambda d: d.find_element("css selector", dlq_visible).text == "1")
    console.click(f'button[data-action="peek"][data-queue="{DLQ}"]')
    message = console.wait_for(
        lambda d: d.find_elements("css selector", f'#peek-list .message[data-message-id="{message_id}"]')
    )[0]
    assert "browser_blocked" in message.find_element("css selector", ".failure").text
    assert "received 5 times" in message.find_element("css selector", ".meta").text
    assert json.loads(message.find_element("css selector", "pre.body").text) == change

    with db.transaction() as conn:  # the fix
        conn.execute(text("ALTER TABLE bo.ledger_entries DROP CONSTRAINT browser_blocked"))
    console.click(f'button[data-action="replay"][data-queue="{DLQ}"]')
    console.css("#replay-filter").send_keys("after.wallet_id == 'w-blocked'")
    console.click("#replay-run")
    console.wait_for(lambda d: d.find_element("id", "replay-result").get_attribute("data-moved") == "1")
    assert "matched 1, moved 1" in console.css("#replay-result").text
    assert f"moved: {message_id}" in console.css("#replay-result").text  # what was moved

    cloud.run_until_idle(max_seconds=600)
    with db.transaction() as conn:
        applied = conn.execute(
            text("SELECT count(*) FROM bo.ledger_entries WHERE tx_id = 't-browser'")
        ).scalar()
        audit = conn.execute(text("SELECT subject, action, target, outcome FROM ops.audit")).all()
    assert applied == 1
    consumer = [j for j in cloud.journal() if j["function"] == "backoffice-consumer"]
    assert [(j["outcome"], j["batch_item_failures"]) for j in consumer[5:]] == [("ok", [])]  # once
    assert [tuple(a) for a in audit] == [("local-console", "replay", DLQ, "ok")]
    console.wait_for(lambda d: d.find_element("css selector", dlq_visible).text == "0")
    assert console.errors() == []


def test_a_rate_limited_replay_shows_its_progress_before_the_final_result(console):
    cloud = console.cloud
    ids = [cloud.send(DLQ, {"n": i}) for i in range(5)]
    console.open("queues")
    dlq_visible = f'#queues-table tr[data-queue="{DLQ}"] td.visible'
    console.wait_for(lambda d: d.find_element("css selector", dlq_visible).text == "5")
    console.click(f'button[data-action="replay"][data-queue="{DLQ}"]')
    console.css("#replay-filter").send_keys("n >= `0`")
    console.css("#replay-rate").send_keys("1/s")  # one message a second: 5 s, polled every 0.5 s
    console.click("#replay-run")

    def part_way(d):
        box = d.find_element("id", "replay-progress")
        moved = int(box.get_attribute("data-moved") or 0)
        return box.is_displayed() and box.get_attribute("data-state") == "running" and 0 < moved < 5 and moved

    moved = console.wait_for(part_way, timeout=20)
    assert console.css("#replay-result").get_attribute("data-moved") is None  # no answer yet
    counts = console.css("#replay-counts").text
    assert counts.startswith("replaying: examined 5/5 · matched 5 · moved ")
    shown = console.css("#replay-moved").text.removeprefix("moved so far: ").split(", ")
    assert len(shown) >= moved and set(shown) <= set(ids)
    bar = console.css("#replay-bar")
    assert 0 < float(bar.get_attribute("value")) < float(bar.get_attribute("max")) == 5

    console.wait_for(
        lambda d: d.find_element("id", "replay-result").get_attribute("data-moved") == "5", timeout=30
    )
    result = console.css("#replay-result").text
    assert "matched 5, moved 5" in result
    assert set(result.split("moved: ")[1].split(", ")) == set(ids)  # what was moved
    assert not console.css("#replay-progress").is_displayed()
    assert cloud.depth(DLQ) == (0, 0) and cloud.depth(QUEUE) == (5, 0)
    console.wait_for(lambda d: d.find_element("css selector", dlq_visible).text == "0")
    # on a loaded machine the page's first poll can come before the POST stored the replay:
    # GET /ops/replays/{id} is then a 404 the page waits through (Chrome logs it); nothing else
    assert [e for e in console.errors() if "/ops/replays/" not in e["message"]] == []


def test_a_schedule_disabled_from_the_page_does_not_fire(console):
    cloud = console.cloud
    name, function = "marketplace-inventory-schedule", "marketplace-inventory-sync"
    console.open("schedules")
    console.click(f'button[data-action="disable"][data-schedule="{name}"]')
    console.wait_for(
        lambda d: d.find_element("css selector", f'tr[data-schedule="{name}"] .state').text == "DISABLED"
    )
    cloud.advance(3 * 3600)
    assert not [j for j in cloud.journal() if j["function"] == function]
    other = [j for j in cloud.journal() if j["function"] == "marketplace-orders-sync"]
    assert len(other) >= 10  # the other schedule kept firing meanwhile (every 15 minutes)
    assert console.css(f'button[data-action="enable"][data-schedule="{name}"]').is_enabled()
    assert console.errors() == []


def test_the_invocations_view_shows_a_new_invocation_without_a_reload(console):
    cloud = console.cloud
    console.open("invocations")
    console.wait_for(lambda d: d.find_elements("css selector", "#invocations-table tbody tr"))
    before = {
        e.get_attribute("data-request-id")
        for e in console.driver.find_elements("css selector", "#invocations-table tbody tr")
    }
    loaded = console.driver.execute_script("return performance.timeOrigin")
    status, _, _ = cloud.request("GET", "/ops/health")
    assert status == 200
    request_id = next(
        j["request_id"] for j in reversed(cloud.journal()) if j.get("route") == "GET /ops/health"
    )
    assert request_id not in before
    console.wait_for(
        lambda d: d.find_elements("css selector", f'#invocations-table tr[data-request-id="{request_id}"]')
    )
    assert console.driver.execute_script("return performance.timeOrigin") == loaded  # no reload
    console.click(f'#invocations-table tr[data-request-id="{request_id}"]')
    console.wait_for(lambda d: d.find_element("id", "inv-detail").is_displayed())
    console.wait_for(lambda d: '"rawPath": "/ops/health"' in d.find_element("id", "inv-event").text)
    assert '"statusCode": 200' in console.css("#inv-result").text
    assert console.errors() == []


def test_the_aws_page_asks_for_a_token_and_a_viewer_cannot_act(console):
    """``/ops/console`` (the page ``ops-api`` serves on AWS) carries no token: the user pastes one."""
    from opsdeck.auth import issue_dev_token

    console.driver.get(f"{console.cloud.base_url}/ops/console#schedules")
    console.wait_for(lambda d: d.find_element("id", "signin").is_displayed())
    console.css("#token").send_keys(issue_dev_token("vera", ["ops-viewer"]))
    console.css("#signin-form button").click()
    console.wait_for(lambda d: not d.find_element("id", "signin").is_displayed())
    assert "vera (ops-viewer) · read only" in console.css("#who").text
    fire = console.wait_for(
        lambda d: d.find_elements("css selector", 'button[data-action="fire"][data-schedule]')
    )
    assert all(not button.is_enabled() for button in fire)
    # the API refuses it regardless of the page
    status, _, _ = console.cloud.request(
        "POST",
        "/ops/schedules/marketplace-orders-schedule/fire",
        headers={
            "authorization": f"Bearer {issue_dev_token('vera', ['ops-viewer'])}",
            "x-opsdeck-console": "1",
        },
    )
    assert status == 403
    errors = [e for e in console.errors() if "401" not in e["message"]]  # the unauthenticated first call
    assert errors == []
