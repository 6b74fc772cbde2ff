"""Slack notifications of new orders, delivered from the transactional outbox.

The sync writes one ``marketplace.notifications`` row per new order in the same
transaction as the order itself: a notification exists iff the order was committed as
new, exactly once (unique per order). ``deliver_pending`` runs after that commit:

1. **plan** — pending rows without a batch get one, committed before anything is sent:
   one message per order, or digests when more than ``SLACK_DIGEST_THRESHOLD`` wait;
2. **send** — each batch, oldest first, through ``post_once``: a Powertools idempotent
   function on Redis keyed by the batch key (``key_prefix`` shared by every function, so
   the API's inline sync and the scheduled one agree), paced by a shared ``TokenBucket``
   at Slack's ~1 message/s and retried on 429 (``Retry-After``) and 5xx;
3. **mark** — delivered rows get ``delivered_at``.

Crash after Slack's 200 but before step 3: the idempotency record already says
COMPLETED, so the next pass returns the stored result without posting and just marks
the rows. Only a crash in the microseconds between Slack's 200 and that Redis write can
still repeat a message — Slack webhooks take no idempotency key, so that window cannot
close entirely. Failures never reach the sync's transaction: 429/5xx/timeouts leave the
batch pending and end the pass (Slack is down; the next run retries); a 4xx about the
webhook (404 ``no_service``, 403, 410) does the same; a 4xx about the message itself
(400 ``invalid_payload``) counts an attempt and gives the batch up after
``SLACK_MAX_ATTEMPTS`` so one bad message cannot block the rest.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from opsdeck import idempotency
from opsdeck.errors import UpstreamError
from opsdeck.http import RetryPolicy, TokenBucket, make_client, raise_for_upstream
from opsdeck.observability import logger, metric

from .domain import Order
from .pacing import (
    Deadline,
    DeadlineReached,
    OperationLimiter,
    deadline_sleep,
    operation_scope,
    request_timeout,
)
from .settings import MarketplaceSettings, slack_webhook_url

NEW_ORDER = "new_order"
DIGEST_LINES = 20
#: Slack answers 429 with Retry-After; POST is retried because 429/5xx mean "not posted"
SLACK_RETRY = RetryPolicy(
    max_attempts=4, base_s=0.5, cap_s=8.0, max_retry_after_s=30.0, retry_methods=frozenset({"POST"})
)
SLACK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
IDEMPOTENCY_KEY_PREFIX = "marketplace-slack"
IDEMPOTENCY_TTL_S = 14 * 86_400


# ---------------------------------------------------------------------- messages


def notification_payload(order: Order) -> dict[str, Any]:
    """What the outbox keeps about a new order: enough to write its message later."""
    return {
        "amazon_order_id": order.amazon_order_id,
        "order_status": order.order_status,
        "purchase_date": order.purchase_date.isoformat() if order.purchase_date else None,
        "amount": None if order.order_total_amount is None else str(order.order_total_amount),
        "currency": order.order_total_currency,
        "marketplace_id": order.marketplace_id,
        "fulfillment_channel": order.fulfillment_channel,
        "items": None if order.items is None else sum(i.quantity_ordered for i in order.items),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _money(p: Mapping[str, Any]) -> str:
    if p.get("amount") is None:
        return "no price yet"
    return f"{p.get('currency') or ''} {p['amount']}".strip()


def _line(p: Mapping[str, Any]) -> str:
    return f"`{_escape(str(p['amazon_order_id']))}` — {_escape(str(p.get('order_status')))}, {_money(p)}"


def order_message(p: Mapping[str, Any]) -> dict[str, Any]:
    """One new order: ``text`` for notifications, ``blocks`` for the channel."""
    order_id = _escape(str(p["amazon_order_id"]))
    fields = [
        f"*Order*\n`{order_id}`",
        f"*Status*\n{_escape(str(p.get('order_status')))}",
        f"*Total*\n{_money(p)}",
        f"*Purchased*\n{p.get('purchase_date') or 'unknown'}",
    ]
    if p.get("fulfillment_channel"):
        fields.append(f"*Fulfilment*\n{_escape(str(p['fulfillment_channel']))}")
    if p.get("marketplace_id"):
        fields.append(f"*Marketplace*\n{_escape(str(p['marketplace_id']))}")
    return {
        "text": f"New Amazon order {order_id} ({_escape(str(p.get('order_status')))}, {_money(p)})",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": ":package: *New Amazon order*"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ],
    }


def digest_message(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Many new orders at once: one message listing the first ``DIGEST_LINES``."""
    count = len(payloads)
    lines = [f"• {_line(p)}" for p in payloads[:DIGEST_LINES]]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":package: *{count} new Amazon orders*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]
    if count > DIGEST_LINES:
        more = f"…and {count - DIGEST_LINES} more (see /marketplace/orders)"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"text": f"{count} new Amazon orders", "blocks": blocks}


def message_for(payloads: Sequence[Mapping[str, Any]], *, digest: bool) -> dict[str, Any]:
    return digest_message(payloads) if digest or len(payloads) > 1 else order_message(payloads[0])


# ------------------------------------------------------------------------ client


class SlackRefused(UpstreamError):
    """Slack answered a 4xx other than 429: resending the same thing will not help."""

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.upstream_status = status  # ``status`` is this error's own HTTP status (502)

    @property
    def about_webhook(self) -> bool:
        """404 no_service, 403 action_prohibited, 410 channel_is_archived: fix the config, not the text."""
        return self.upstream_status in (401, 403, 404, 410)


class SlackWebhook:
    """An incoming webhook: paced by a shared bucket, retried on 429/5xx."""

    def __init__(self, url: str, bucket: TokenBucket | None) -> None:
        self.url = url
        limiter = OperationLimiter({"slack": bucket} if bucket is not None else {})
        self.http = make_client(
            timeout=SLACK_TIMEOUT, retry=SLACK_RETRY, limiter=limiter, sleep=deadline_sleep
        )

    def post(self, message: Mapping[str, Any]) -> None:
        with operation_scope("slack"):
            response = self.http.post(self.url, json=dict(message), timeout=request_timeout(SLACK_TIMEOUT))
        if 400 <= response.status_code < 500 and response.status_code != 429:
            detail = " ".join(response.text.split())[:100] or f"HTTP {response.status_code}"
            raise SlackRefused(f"Slack refused the message: {detail}", status=response.status_code)
        raise_for_upstream(response, "Slack")
        metric("SlackMessageSent")


@functools.lru_cache(maxsize=4)
def _webhook(url: str, rate_per_s: float, redis_client: Any) -> SlackWebhook:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    bucket = TokenBucket(redis_client, f"marketplace:slack:{digest}", rate_per_s=rate_per_s, burst=1)
    return SlackWebhook(url, bucket)


def webhook(url: str, settings: MarketplaceSettings) -> SlackWebhook:
    from opsdeck import cache

    return _webhook(url, settings.slack_rate_per_s, cache.client())


def reset() -> None:
    _webhook.cache_clear()


# ------------------------------------------------------------------- idempotency

_STORE = idempotency.persistence()  # a store of its own: Powertools binds a store to one config
_CONFIG = idempotency.config(expires_after_seconds=IDEMPOTENCY_TTL_S, key_jmespath="key")


class _DeadlineContext:
    """What Powertools reads from a Lambda context: when an in-flight send counts as dead."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        left = self.deadline.remaining()
        return int(min(left, 900.0) * 1000) if math.isfinite(left) else 900_000


@idempotent_function(
    data_keyword_argument="message",
    persistence_store=_STORE,
    config=_CONFIG,
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
)
def post_once(*, message: dict[str, Any], hook: SlackWebhook) -> dict[str, Any]:
    """Post ``message["payload"]`` unless the batch ``message["key"]`` was posted before."""
    hook.post(message["payload"])
    return {"key": message["key"], "posted_at": datetime.now(UTC).isoformat()}


# --------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    messages: int = 0
    delivered: int = 0
    pending: int = 0
    error: str | None = None


def deliver_pending(settings: MarketplaceSettings, deadline: Deadline) -> DeliveryReport:
    """Send what the outbox holds, within ``deadline``; never raises for Slack's failures."""
    from . import repository

    repository.plan_batches(digest_threshold=settings.slack_digest_threshold)
    batches = repository.pending_batches()
    waiting = sum(len(b.ids) for b in batches)
    if not batches:
        return DeliveryReport()
    url = slack_webhook_url(settings)
    if not url:
        return DeliveryReport(pending=waiting, error="Slack is not configured (SLACK_WEBHOOK_URL)")
    hook = webhook(url, settings)
    _CONFIG.register_lambda_context(_DeadlineContext(deadline))
    messages = delivered = 0
    error: str | None = None
    for batch in batches:
        if deadline.passed:
            break
        message = {
            "key": batch.key,
            "payload": message_for(batch.payloads, digest=batch.key.startswith("digest")),
        }
        try:
            post_once(message=message, hook=hook)
        except DeadlineReached:
            break
        except IdempotencyAlreadyInProgressError:
            logger.info("Slack message already in flight elsewhere", extra={"batch": batch.key})
            continue
        except IdempotencyPersistenceLayerError as exc:
            error = f"idempotency store unavailable: {exc}"
            break
        except SlackRefused as exc:
            give_up = not exc.about_webhook and batch.attempts + 1 >= settings.slack_max_attempts
            repository.record_failure(batch.key, error=exc.detail, give_up=give_up, now=datetime.now(UTC))
            error = exc.detail
            metric("SlackMessageFailed")
            if exc.about_webhook:
                break
            continue
        except (UpstreamError, httpx.TransportError) as exc:
            error = getattr(exc, "detail", None) or f"Slack unreachable: {type(exc).__name__}"
            repository.record_failure(batch.key, error=error, give_up=False, now=datetime.now(UTC))
            metric("SlackMessageFailed")
            break
        delivered += repository.mark_delivered(batch.key, now=datetime.now(UTC))
        messages += 1
    if error:
        logger.warning("Slack delivery incomplete", extra={"error": error, "delivered": delivered})
    return DeliveryReport(messages=messages, delivered=delivered, pending=waiting - delivered, error=error)
