"""Parsing SP-API answers tolerantly, and the sync window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from functions.marketplace import domain
from functions.marketplace.domain import BadPayload, parse_time

SANDBOX = json.loads(
    (Path(__file__).parents[2] / "integration/marketplace/fixtures/sandbox_orders_v0.json").read_text()
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T09:00:00Z", "2026-11-22T09:00:00+00:00"),
        ("2026-11-22T09:00:00.123456789Z", "2026-11-22T09:00:00.123456+00:00"),  # nanoseconds
        ("2026-11-22T10:00:00+01:00", "2026-11-22T09:00:00+00:00"),
        ("2026-11-22T10:00:00+0100", "2026-11-22T09:00:00+00:00"),
        ("2026-11-22T09:00:00", "2026-11-22T09:00:00+00:00"),  # naive: UTC
        ("2026-11-22", "2026-11-22T00:00:00+00:00"),
        ("1970-01-19T03:58:30Z", "1970-01-19T03:58:30+00:00"),  # the static sandbox's dates
        ("1.569521782042E9", "2019-09-26T18:16:22.042000+00:00"),  # its CreatedBefore
        ("1569521782", "2019-09-26T18:16:22+00:00"),
        ("1569521782042", "2019-09-26T18:16:22.042000+00:00"),  # epoch milliseconds
        (1569521782, "2019-09-26T18:16:22+00:00"),
        ("Thu, 26 Sep 2019 18:16:22 GMT", "2019-09-26T18:16:22+00:00"),
        ("", None),
        ("soon", None),
        ("NaN", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_time_is_tolerant(value, expected):
    parsed = parse_time(value)
    assert (parsed.isoformat() if parsed else None) == expected
    assert parsed is None or parsed.tzinfo is not None


def test_money_is_decimal_from_strings_of_either_version():
    assert domain.parse_money({"CurrencyCode": "USD", "Amount": "11.01"}) == (Decimal("11.01"), "USD")
    assert domain.parse_money({"currencyCode": "JPY", "amount": "19940"}) == (Decimal("19940"), "JPY")
    assert domain.parse_money({"CurrencyCode": "USD", "Amount": "1,234.50"}) == (Decimal("1234.50"), "USD")
    assert domain.parse_money({"CurrencyCode": "USD", "Amount": "n/a"}) == (None, "USD")
    assert domain.parse_money(None) == (None, None)


def test_statuses_are_spelled_as_v0():
    assert domain.canonical_status("Unshipped") == "Unshipped"
    assert domain.canonical_status("unshipped") == "Unshipped"
    assert domain.canonical_status("PARTIALLY_SHIPPED") == "PartiallyShipped"
    assert domain.canonical_status("CANCELLED") == "Canceled"
    assert domain.canonical_status("BrandNewStatus") == "BrandNewStatus"  # kept, Amazon adds statuses
    assert domain.canonical_status(None) == "Unknown"


def test_sandbox_get_orders_case_parses():
    page = domain.parse_v0_orders_page(SANDBOX["getOrders"]["200"][0]["response"])
    assert page.next_token is None
    first, second = page.orders
    assert first.amazon_order_id == "902-1845936-5435065"
    assert first.order_status == "Unshipped"
    assert first.purchase_date == datetime(1970, 1, 19, 3, 58, 30, tzinfo=UTC)
    assert (first.order_total_amount, first.order_total_currency) == (Decimal("11.01"), "USD")
    assert (first.items_shipped, first.items_unshipped, first.fulfillment_channel) == (0, 1, "MFN")
    assert first.items is None and second.amazon_order_id == "902-8745147-1934268"


def test_sandbox_get_order_items_case_parses():
    named, items, token = domain.parse_v0_items_page(
        SANDBOX["getOrderItems"]["200"][0]["response"], "TEST_CASE_200"
    )
    assert (named, token) == ("902-1845936-5435065", None)
    [item] = items
    assert (item.order_item_id, item.asin, item.quantity_ordered) == ("05015851154158", "B00551Q3CS", 1)
    assert (item.item_price_amount, item.item_tax_amount) == (Decimal("10.00"), Decimal("1.01"))


def test_pending_order_without_total_and_without_dates_is_kept():
    order = domain.parse_v0_order({"AmazonOrderId": "111-1", "OrderStatus": "Pending", "PurchaseDate": "x"})
    assert order.order_total_amount is None
    assert order.purchase_date is None
    assert order.last_update_date == domain.EPOCH
    assert set(order.warnings) == {"PurchaseDate unparseable", "LastUpdateDate missing or unparseable"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "getOrders response is not a JSON object"),
        ({"errors": []}, "getOrders payload is not a JSON object"),
        ({"payload": {}}, "getOrders payload has no Orders"),
        ({"payload": {"Orders": {}}}, "payload.Orders is not a JSON array"),
        ({"payload": {"Orders": ["x"]}}, "payload.Orders[0] is not a JSON object"),
        ({"payload": {"Orders": [{"AmazonOrderId": ""}]}}, "payload.Orders[0] has no AmazonOrderId"),
    ],
)
def test_what_makes_a_page_unusable_is_a_bad_payload(body, message):
    with pytest.raises(BadPayload, match=message.replace("[", r"\[").replace("]", r"\]")):
        domain.parse_v0_orders_page(body)
    assert BadPayload.status == 502


def test_orders_2026_example_parses_with_embedded_items():
    body = {
        "orders": [
            {
                "orderId": "250-1234567-8901234",
                "createdTime": "2024-12-25T02:30:00Z",
                "lastUpdatedTime": "2024-12-25T06:45:00Z",
                "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1VC38T7YXB528"},
                "proceeds": {"grandTotal": {"amount": "19940", "currencyCode": "JPY"}},
                "fulfillment": {"fulfillmentStatus": "SHIPPED", "fulfilledBy": "AMAZON"},
                "orderItems": [
                    {
                        "orderItemId": "25012345678901",
                        "quantityOrdered": 2,
                        "product": {
                            "asin": "B08C1W5N87",
                            "sellerSku": "ECHO-DOT",
                            "price": {"unitPrice": {"amount": "9970", "currencyCode": "JPY"}},
                        },
                        "fulfillment": {"quantityFulfilled": 2},
                    }
                ],
            }
        ],
        "pagination": {"nextToken": "abc+/="},
    }
    page = domain.parse_v2026_orders_page(body)
    [order] = page.orders
    assert page.next_token == "abc+/="
    assert (order.order_status, order.fulfillment_channel, order.marketplace_id) == (
        "Shipped",
        "AFN",
        "A1VC38T7YXB528",
    )
    assert (order.order_total_amount, order.order_total_currency) == (Decimal("19940"), "JPY")
    [item] = order.items
    assert (item.item_price_amount, item.quantity_shipped) == (Decimal("19940"), 2)
    assert (order.items_shipped, order.items_unshipped) == (2, 0)


def test_inventory_summary_with_details():
    body = {
        "pagination": {"nextToken": "t"},
        "payload": {
            "granularity": {"granularityType": "Marketplace", "granularityId": "ATVPDKIKX0DER"},
            "inventorySummaries": [
                {
                    "asin": "B0",
                    "fnSku": "X0",
                    "sellerSku": "SKU-1",
                    "condition": "NewItem",
                    "lastUpdatedTime": "2026-11-20T10:00:00Z",
                    "productName": "Thing",
                    "totalQuantity": 12,
                    "inventoryDetails": {
                        "fulfillableQuantity": 9,
                        "reservedQuantity": {"totalReservedQuantity": 2},
                        "unfulfillableQuantity": {"totalUnfulfillableQuantity": 1},
                    },
                }
            ],
        },
    }
    [summary], token = domain.parse_inventory_page(body, "ATVPDKIKX0DER")
    assert token == "t"
    assert (summary.seller_sku, summary.fulfillable_quantity, summary.reserved_quantity) == ("SKU-1", 9, 2)
    assert summary.unfulfillable_quantity == 1 and summary.researching_quantity is None


def test_window_overlaps_the_watermark_and_keeps_the_lag():
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    watermark = now - timedelta(minutes=20)
    window = domain.next_window(
        watermark=watermark, now=now, overlap_s=300, lag_s=150, initial_lookback_s=86_400, window_s=86_400
    )
    assert window.start == watermark - timedelta(minutes=5)
    assert window.end == now - timedelta(seconds=150)
    first = domain.next_window(
        watermark=None, now=now, overlap_s=300, lag_s=150, initial_lookback_s=3600, window_s=600
    )
    assert (first.start, first.end) == (now - timedelta(hours=1), now - timedelta(minutes=50))
    assert domain.iso(first.start) == "2026-11-22T08:00:00Z"


def test_latest_version_of_an_order_wins_within_a_listing():
    old = domain.parse_v0_order(
        {"AmazonOrderId": "1", "OrderStatus": "Pending", "LastUpdateDate": "2026-01-01"}
    )
    new = domain.parse_v0_order(
        {"AmazonOrderId": "1", "OrderStatus": "Unshipped", "LastUpdateDate": "2026-01-02"}
    )
    assert domain.latest_by_id([new, old]) == [new]
    assert domain.latest_by_id([old, new]) == [new]
