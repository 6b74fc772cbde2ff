"""Opaque pagination cursors: ``encode(kind, *position)`` → text, ``decode(text, kind)`` → position.

A cursor is base64url JSON ``[kind, *position]``. The kind keeps a cursor of one listing from
being replayed against another; anything that does not decode to the expected kind is a 422
``invalid-input`` ("cursor is malformed"), never a 500. Callers still validate the position's
values (types, ranges) and raise ``InvalidInput`` the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import InvalidInput

MAX_LENGTH = 400


def encode(kind: str, *position: Any) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(value: str | None, kind: str) -> list[Any] | None:
    """The position ``encode(kind, ...)`` wrote; ``None`` for no cursor; ``InvalidInput`` otherwise."""
    if value is None or value == "":
        return None
    try:
        if len(value) > MAX_LENGTH:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is malformed") from None
    if not isinstance(data, list) or not data or data[0] != kind:
        raise InvalidInput("cursor is malformed")
    return data[1:]
