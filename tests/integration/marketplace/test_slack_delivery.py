"""Slack alerts of new orders: from the outbox, exactly once, whatever Slack does."""

from __future__ import annotations

import time

import pytest

from functions.marketplace import repository
from tests.integration.marketplace.conftest import Marketplace


def announced(marketplace: Marketplace) -> list[str]:
    """The order ids named by every message the Slack sink received, in order."""
    found = []
    for message in marketplace.sim.slack_messages:
        text = str(message["payload"]["blocks"])
        found.extend(sorted(o for o in marketplace.sim.orders if o in text))
    return found


def pending(marketplace: Marketplace) -> int:
    return marketplace.scalar("SELECT count(*) FROM marketplace.notifications WHERE delivered_at IS NULL")


def test_one_message_per_new_order(marketplace: Marketplace):
    ids = marketplace.orders(2)
    result = marketplace.sync_orders()
    assert (result["new"], result["notified"]) == (2, 2)
    messages = [m["payload"] for m in marketplace.sim.slack_messages]
    assert len(messages) == 2
    assert all(m["text"].startswith("New Amazon order ") for m in messages)
    assert sorted(announced(marketplace)) == sorted(ids)
    arrivals = [m["at"] for m in marketplace.sim.slack_messages]
    assert arrivals[1] - arrivals[0] >= 0.9  # ~1 message/s, Slack's limit


def test_many_new_orders_make_one_digest(marketplace: Marketplace):
    ids = marketplace.orders(25)
    result = marketplace.sync_orders()
    assert (result["new"], result["notified"]) == (25, 25)
    [digest] = [m["payload"] for m in marketplace.sim.slack_messages]
    assert digest["text"] == "25 new Amazon orders"
    assert "…and 5 more" in str(digest["blocks"])
    assert len(announced(marketplace)) == 20 and set(announced(marketplace)) <= set(ids)


def test_slack_outage_delivers_later_exactly_once(marketplace: Marketplace):
    sim = marketplace.sim
    sim.slack_mode = "down"
    ids = marketplace.orders(2)

    during = marketplace.sync_orders()
    assert during["status"] == "succeeded"  # Slack never fails the sync ...
    assert (during["new"], during["notified"], during["pending_notifications"]) == (2, 0, 2)
    assert during["notify_error"] == "Slack answered HTTP 500: internal_error"
    assert marketplace.scalar("SELECT count(*) FROM marketplace.orders") == 2  # ... nor rolls it back
    assert pending(marketplace) == 2 and sim.slack_messages == []
    assert sim.slack_attempts == 4  # retried (5xx), then left for the next run

    sim.slack_mode = "ok"
    after = marketplace.sync_orders()  # no new orders: the outbox alone is delivered
    assert (after["new"], after["notified"], after["pending_notifications"]) == (0, 2, 0)
    assert sorted(announced(marketplace)) == sorted(ids)

    marketplace.sync_orders()
    assert len(sim.slack_messages) == 2  # nothing twice
    assert pending(marketplace) == 0
    runs = marketplace.rows("SELECT notified, notify_error FROM marketplace.sync_runs ORDER BY id")
    assert [(r.notified, r.notify_error) for r in runs] == [(0, during["notify_error"]), (2, None), (0, None)]


def test_crash_between_slack_ok_and_marking_delivered_sends_nothing_twice(
    marketplace: Marketplace, monkeypatch: pytest.MonkeyPatch
):
    """The message is posted, then the function dies before the outbox row is marked: the next run
    finds the idempotency record of that batch and only marks it."""
    [order] = marketplace.orders(1)
    real = repository.mark_delivered

    def crash(*args, **kwargs):
        raise ConnectionResetError("the Lambda was frozen/killed here")

    monkeypatch.setattr(repository, "mark_delivered", crash)
    first = marketplace.sync_orders()
    assert first["status"] == "succeeded" and first["notified"] == 0
    assert "notification pass failed" in first["notify_error"]
    assert len(marketplace.sim.slack_messages) == 1 and pending(marketplace) == 1

    monkeypatch.setattr(repository, "mark_delivered", real)
    second = marketplace.sync_orders()
    assert second["notified"] == 1 and pending(marketplace) == 0
    assert announced(marketplace) == [order]  # still one message


def test_slack_throttling_is_waited_out(marketplace: Marketplace):
    marketplace.sim.slack_retry_after_s = 1
    marketplace.sim.slack_failures.extend([429])
    marketplace.orders(1)
    started = time.monotonic()
    result = marketplace.sync_orders()
    assert result["notified"] == 1
    assert marketplace.sim.slack_attempts == 2
    assert time.monotonic() - started >= 1.0  # Retry-After honoured


def test_webhook_gone_keeps_messages_for_when_it_is_fixed(marketplace: Marketplace):
    marketplace.sim.slack_mode = "refuse"  # 404 no_service: the webhook was removed
    marketplace.orders(2)
    result = marketplace.sync_orders()
    assert result["notify_error"] == "Slack refused the message: no_service"
    assert marketplace.sim.slack_attempts == 1  # not retried, not repeated for the other message
    assert marketplace.scalar("SELECT count(*) FROM marketplace.notifications WHERE gave_up_at IS NULL") == 2

    marketplace.sim.slack_mode = "ok"
    assert marketplace.sync_orders()["notified"] == 2


def test_without_a_webhook_notifications_wait(marketplace: Marketplace, configure):
    marketplace.orders(1)
    with configure(SLACK_WEBHOOK_URL=None):
        result = marketplace.sync_orders()
    assert result["notify_error"] == "Slack is not configured (SLACK_WEBHOOK_URL)"
    assert pending(marketplace) == 1
    assert marketplace.sync_orders()["notified"] == 1
