"""Admin API domain: input parsing, cursors, status groups, views."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from functions.backoffice import domain
from opsdeck import cursor as cursor_codec
from opsdeck.errors import ConfigError, InvalidInput
from tests.support import env


@pytest.mark.parametrize("value", ["tx-1", "A", "po:2026.01_x", "9" * 64])
def test_valid_ids(value):
    assert domain.parse_id(value, "tx_id") == value


@pytest.mark.parametrize("value", ["", "-x", "x" * 65, "a b", "a/b", "ü", "a\x00"])
def test_malformed_ids(value):
    with pytest.raises(InvalidInput, match="tx_id is malformed"):
        domain.parse_id(value, "tx_id")


@pytest.mark.parametrize(("value", "expected"), [(None, 20), ("", 20), ("1", 1), ("100", 100)])
def test_limit(value, expected):
    assert domain.parse_limit(value) == expected


@pytest.mark.parametrize("value", ["0", "101", "-1", "1.5", "ten", "99999"])
def test_bad_limit(value):
    with pytest.raises(InvalidInput):
        domain.parse_limit(value)


def test_wallet_cursor_round_trip_keeps_microseconds():
    when = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    micros = int(when.timestamp()) * 1_000_000 + when.microsecond
    cursor = cursor_codec.encode("w", micros, "tx-9")
    assert domain.wallet_cursor(cursor) == (when, "tx-9")
    assert "=" not in cursor and "tx-9" not in cursor  # opaque, URL-safe


@pytest.mark.parametrize(
    "cursor",
    [
        "***",
        "e30",  # {}
        cursor_codec.encode("a", 5),  # another endpoint's cursor
        cursor_codec.encode("w", "soon", "tx-1"),
        cursor_codec.encode("w", 1, "bad id"),
        cursor_codec.encode("w", 10**30, "tx-1"),
        cursor_codec.encode("w", 1),
        "A" * 500,
    ],
)
def test_malformed_wallet_cursors(cursor):
    with pytest.raises(InvalidInput, match="cursor is malformed"):
        domain.wallet_cursor(cursor)


@pytest.mark.parametrize("cursor", [cursor_codec.encode("a", 0), cursor_codec.encode("a", "7"), "Wy"])
def test_malformed_audit_cursors(cursor):
    with pytest.raises(InvalidInput):
        domain.audit_cursor(cursor)


def test_times_are_utc():
    assert domain.parse_time("2026-01-01T09:00:00+09:00", "since") == datetime(2026, 1, 1, tzinfo=UTC)
    assert domain.parse_time("2026-01-01T00:00:00Z", "since") == datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        domain.iso(datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(microseconds=5))
        == "2026-01-01T09:00:00.000005Z"
    )
    assert domain.iso(datetime(2026, 1, 1, 18, tzinfo=UTC).astimezone()) == "2026-01-01T18:00:00.000000Z"
    with pytest.raises(InvalidInput):
        domain.parse_time("next tuesday", "since")


def test_status_groups_are_unknown_until_configured():
    with env(BACKOFFICE_STATUS_GROUPS=None):
        assert domain.status_group("SETTLED", domain.status_groups()) == "UNKNOWN"
    mapping = {"SUCCESS": ["SETTLED", "DONE"], "FAIL": ["FAILED"], "IN_PROGRESS": ["PENDING"]}
    with env(BACKOFFICE_STATUS_GROUPS=json.dumps(mapping)):
        groups = domain.status_groups()
        assert [domain.status_group(s, groups) for s in ("DONE", "FAILED", "PENDING", "ODD", None)] == [
            "SUCCESS",
            "FAIL",
            "IN_PROGRESS",
            "UNKNOWN",
            "UNKNOWN",
        ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be an object"),
        ('{"WIN": ["A"]}', "unknown group 'WIN'"),
        ('{"SUCCESS": "A"}', "must list statuses"),
        ('{"SUCCESS": ["A"], "FAIL": ["A"]}', "in two groups"),
    ],
)
def test_bad_status_group_configuration_names_the_variable(raw, message):
    with env(BACKOFFICE_STATUS_GROUPS=raw), pytest.raises(ConfigError, match=message):
        domain.status_groups()


def test_entries_that_are_no_double_entry_leg_have_unknown_pairing():
    assert domain.is_pair_leg({"related_id": "po", "type": "PAYMENT", "related_type": None})
    assert not domain.is_pair_leg({"related_id": None, "type": "PAYMENT", "related_type": None})
    assert not domain.is_pair_leg({"related_id": "po", "type": "FEE", "related_type": None})
    assert not domain.is_pair_leg({"related_id": "r", "type": "RECEIVE", "related_type": "REFUND"})
