"""Event shapes follow AWS's documented formats."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from localcloud.events import flatten_claims, http_event, match_route, schedule_event, sqs_record

ROUTES = [
    "GET /backoffice/admin/tx/{tx_id}",
    "GET /backoffice/admin/tx/export",
    "ANY /backoffice/{proxy+}",
    "POST /backoffice/admin/tx/{tx_id}",
]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/backoffice/admin/tx/42", ("GET /backoffice/admin/tx/{tx_id}", {"tx_id": "42"})),
        ("GET", "/backoffice/admin/tx/export", ("GET /backoffice/admin/tx/export", {})),
        ("POST", "/backoffice/admin/tx/42", ("POST /backoffice/admin/tx/{tx_id}", {"tx_id": "42"})),
        ("DELETE", "/backoffice/admin/tx/42", ("ANY /backoffice/{proxy+}", {"proxy": "admin/tx/42"})),
        ("GET", "/backoffice", None),
        ("GET", "/elsewhere", None),
    ],
)
def test_route_selection_prefers_the_most_specific(method, path, expected):
    assert match_route(ROUTES, method, path) == expected


def test_default_route_catches_the_rest():
    assert match_route(["GET /a", "$default"], "GET", "/b") == ("$default", {})


def test_http_event_payload_v2_shape():
    when = datetime(2020, 3, 12, 19, 3, 58, tzinfo=UTC)
    event = http_event(
        "get",
        "/ops/health",
        query="a=1&a=2&b=",
        headers=[("X-Thing", "1"), ("x-thing", "2"), ("Cookie", "s=1; t=2")],
        when=when,
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /ops/health"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-thing"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    ctx = event["requestContext"]
    assert ctx["time"] == "12/Mar/2020:19:03:58 +0000"
    assert ctx["timeEpoch"] == 1584039838000
    assert ctx["http"]["method"] == "GET"
    assert "pathParameters" not in event and "body" not in event


def test_binary_bodies_are_base64():
    event = http_event("POST", "/x", body=b"\x00\xff", headers={"content-type": "application/octet-stream"})
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"
    text = http_event("POST", "/x", body={"a": 1})
    assert (text["isBase64Encoded"], text["body"], text["headers"]["content-type"]) == (
        False,
        '{"a": 1}',
        "application/json",
    )


def test_jwt_claims_are_flattened_like_api_gateway():
    assert flatten_claims({"roles": ["A", "B"], "exp": 5, "admin": True}) == {
        "roles": "[A B]",
        "exp": "5",
        "admin": "true",
    }
    event = http_event("GET", "/x", jwt_claims={"sub": "u"}, jwt_scopes=["read"])
    assert event["requestContext"]["authorizer"]["jwt"] == {"claims": {"sub": "u"}, "scopes": ["read"]}


def test_schedule_event_shape():
    event = schedule_event("opsdeck-local-x", when=datetime(2026, 1, 1, tzinfo=UTC), detail={"k": 1})
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-01T00:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/opsdeck-local-x"]
    assert event["detail"] == {"k": 1}


def test_sqs_record_attributes():
    standard = sqs_record({"a": 1}, queue_name="q", receive_count=3, message_attributes={"k": "v"})
    assert standard["body"] == '{"a":1}'
    assert standard["attributes"]["ApproximateReceiveCount"] == "3"
    assert standard["messageAttributes"]["k"]["stringValue"] == "v"
    assert "MessageGroupId" not in standard["attributes"]
    fifo = sqs_record("x", queue_name="q.fifo", group_id="g")
    assert fifo["attributes"]["MessageGroupId"] == "g"
    assert fifo["eventSourceARN"].endswith(":q.fifo")
