"""``opsdeck.params``: the parameter rules the OpenAPI document states are the rules enforced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import APIRouter, Query

from localcloud.events import http_event
from opsdeck.api import create_app, lambda_handler
from opsdeck.params import Cursor, Timestamp, or_empty, parse_timestamp
from tests.support import LambdaContext


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T09:30:00Z", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        ("2026-01-05t09:30:00.5z", datetime(2026, 1, 5, 9, 30, 0, 500000, tzinfo=UTC)),
        ("2026-01-05T18:30:00+09:00", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),
        ("2026-01-05T11:30:00 02:00", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),  # unencoded "+"
        ("2026-01-05 09:30:00", datetime(2026, 1, 5, 9, 30, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_rfc3339_timestamps_parse_to_utc(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["0", "1767225600", "2026-01-05", "next tuesday", "2026-13-01T00:00:00Z", ""]
)
def test_what_the_document_does_not_promise_is_refused(text):
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)


def test_parameters_document_their_rule_and_enforce_it():
    router = APIRouter(prefix="/p")

    @router.get("/items")
    async def items(since: Timestamp | None = Query(None), cursor: Cursor | None = Query(None)) -> dict:
        return {"since": since.isoformat() if since else None}

    app = create_app(title="p", base_path="/p", routers=[router], gateway_routes={})
    params = {p["name"]: p["schema"] for p in app.openapi()["paths"]["/p/items"]["get"]["parameters"]}
    assert params["since"]["anyOf"][0]["format"] == "date-time"
    assert params["cursor"]["anyOf"][0]["x-opaque"] is True
    handler = lambda_handler(app)

    def status(query: str) -> int:
        return handler(http_event("GET", "/p/items", query=query), LambdaContext())["statusCode"]

    assert status("since=2026-01-05T09:30:00Z") == 200
    assert status("since=0") == 422  # pydantic's datetime would take an epoch
    assert status("since=2026-01-05") == 422


def test_or_empty_documents_an_empty_value_as_not_given():
    schema = or_empty({"type": "integer"})
    assert schema == {
        "anyOf": [
            {"type": "integer"},
            {"type": "string", "maxLength": 0, "description": schema["anyOf"][1]["description"]},
        ]
    }
