"""Request parameters whose OpenAPI schema states exactly the rule the code enforces.

* ``Timestamp`` — an RFC 3339 date-time (``2026-01-05T09:30:00Z``, any offset; a naive one is
  taken as UTC), returned as an aware UTC ``datetime``. pydantic's own ``datetime`` also accepts
  dates and Unix epochs (``0``), which the document (``format: date-time``) does not promise.
* ``CURSOR`` — the schema of an opaque pagination cursor: a string only the API issues (its
  ``next_cursor``); anything else is a 422, which the route documents.
* ``documented(schema)`` — for a parameter the handler takes as a raw string *on purpose* (the
  backoffice audits malformed input before rejecting it): the document states the rule, the
  handler still receives the text and applies the same rule itself.

Use them with FastAPI's ``Query``/``Path``: ``since: Timestamp | None = Query(None)``,
``limit: Annotated[str, documented(LIMIT)] | None = Query(None)``, ``cursor: Cursor | None``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from .cursor import MAX_LENGTH as CURSOR_MAX_LENGTH

#: RFC 3339 ``date-time``, offset optional (naive = UTC); fractions up to microseconds
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?$"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
TIMESTAMP_EXAMPLE = "2026-01-05T09:30:00Z"


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; ``ValueError`` for anything else."""
    text = value.strip() if isinstance(value, str) else ""
    # an unencoded ``+`` of the offset arrives as a space: ``…T09:30:00 02:00``
    text = re.sub(r"(:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$", r"\1+\2", text)
    if not _TIMESTAMP.match(text):
        raise ValueError(f"must be an RFC 3339 timestamp such as {TIMESTAMP_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:  # the shape is right, the date is not (month 13, Feb 30)
        raise ValueError(f"must be an RFC 3339 timestamp such as {TIMESTAMP_EXAMPLE}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    return parse_timestamp(value)


TIMESTAMP_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 (a timestamp without offset is taken as UTC)",
    "examples": [TIMESTAMP_EXAMPLE],
}

Timestamp = Annotated[datetime, BeforeValidator(_timestamp), WithJsonSchema(TIMESTAMP_SCHEMA)]

CURSOR: dict[str, Any] = {
    "type": "string",
    "maxLength": CURSOR_MAX_LENGTH,
    "description": (
        "Opaque: the `next_cursor` of the previous page, exactly as this API issued it. Any other "
        "value is refused with 422 (`cursor is malformed`)."
    ),
    "x-opaque": True,
}


#: an opaque cursor parameter: ``cursor: Cursor | None = Query(None, max_length=CURSOR_MAX_LENGTH)``
Cursor = Annotated[str, WithJsonSchema(CURSOR)]


EMPTY: dict[str, Any] = {"type": "string", "maxLength": 0, "description": "empty: as if not given"}


def or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or the empty string a handler takes as "not given" (``?since=`` from a form)."""
    return {"anyOf": [schema, EMPTY]}


def documented(schema: dict[str, Any]) -> WithJsonSchema:
    """State ``schema`` in the document for a value the handler validates itself; put it on the
    value's own type (``Annotated[str, documented(...)] | None``), where FastAPI keeps it."""
    return WithJsonSchema(schema)
