"""What the Slack messages say."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from functions.marketplace import domain, slack


def payload(order_id: str, amount: str | None = "11.01", status: str = "Unshipped") -> dict:
    order = domain.parse_v0_order(
        {
            "AmazonOrderId": order_id,
            "OrderStatus": status,
            "PurchaseDate": "2026-11-22T08:00:00Z",
            "LastUpdateDate": "2026-11-22T08:05:00Z",
            "MarketplaceId": "ATVPDKIKX0DER",
            "FulfillmentChannel": "AFN",
            **({"OrderTotal": {"CurrencyCode": "USD", "Amount": amount}} if amount else {}),
        }
    )
    return slack.notification_payload(order)


def test_outbox_payload_keeps_what_the_message_needs():
    p = payload("111-0000001-0000001")
    assert p == {
        "amazon_order_id": "111-0000001-0000001",
        "order_status": "Unshipped",
        "purchase_date": datetime(2026, 11, 22, 8, tzinfo=UTC).isoformat(),
        "amount": str(Decimal("11.01")),
        "currency": "USD",
        "marketplace_id": "ATVPDKIKX0DER",
        "fulfillment_channel": "AFN",
        "items": None,
    }


def test_single_order_message():
    message = slack.message_for([payload("111-0000001-0000001")], digest=False)
    assert message["text"] == "New Amazon order 111-0000001-0000001 (Unshipped, USD 11.01)"
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert "*Total*\nUSD 11.01" in fields and "*Fulfilment*\nAFN" in fields


def test_pending_order_has_no_price_yet_and_text_is_escaped():
    message = slack.order_message(payload("<!channel>&", amount=None, status="Pending"))
    assert "no price yet" in message["text"]
    assert "<!channel>" not in str(message) and "&lt;!channel&gt;&amp;" in message["text"]


def test_digest_lists_twenty_and_counts_the_rest():
    orders = [payload(f"111-0000001-{i:07d}") for i in range(23)]
    message = slack.message_for(orders, digest=True)
    assert message["text"] == "23 new Amazon orders"
    listed = message["blocks"][1]["text"]["text"].splitlines()
    assert len(listed) == 20 and listed[0] == "• `111-0000001-0000000` — Unshipped, USD 11.01"
    assert message["blocks"][2]["elements"][0]["text"].startswith("…and 3 more")
    assert len(message["blocks"][1]["text"]["text"]) < 3000  # Slack's limit for a text object
