"""IAM database tokens (opsdeck.dbauth): the real RDS token, minted once per lifetime."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest

from opsdeck import dbauth

HOST, PORT, USER, REGION = (
    "opsdeck-prod.proxy-abc123.eu-west-1.rds.amazonaws.com",
    5432,
    "opsdeck_marketplace_app",
    "eu-west-1",
)
FROZEN = datetime.datetime(2026, 12, 3, 9, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def fresh():
    dbauth.reset()
    yield
    dbauth.reset()


def test_the_token_is_exactly_what_boto3_generate_db_auth_token_makes():
    import boto3

    rds = boto3.session.Session().client("rds", region_name=REGION)
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN.replace(tzinfo=None)):
        expected = rds.generate_db_auth_token(HOST, PORT, USER, REGION)
        ours = dbauth.generate(HOST, PORT, USER, REGION)
    assert ours == expected
    assert ours.startswith(f"{HOST}:{PORT}/?Action=connect&DBUser={USER}&X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Expires=900" in ours
    assert "X-Amz-Security-Token=testing" in ours  # the session token travels in the token


def test_new_connections_reuse_a_token_until_it_is_ten_minutes_old():
    clock = [1000.0]
    with mock.patch("opsdeck.dbauth.time.monotonic", side_effect=lambda: clock[0]):
        first = dbauth.token(HOST, PORT, USER, REGION)
        before = dbauth.minted
        clock[0] += dbauth.REFRESH_AFTER_S - 1
        assert dbauth.token(HOST, PORT, USER, REGION) == first
        assert dbauth.minted == before
        assert dbauth.token(HOST, PORT, "opsdeck_backoffice_app", REGION) != first  # one per user
        clock[0] += 2
        with mock.patch("botocore.auth.get_current_datetime", return_value=datetime.datetime(2030, 1, 1)):
            renewed = dbauth.token(HOST, PORT, USER, REGION)
    assert renewed != first
    assert dbauth.minted == before + 2


def test_without_credentials_the_error_says_so(monkeypatch):
    from opsdeck.errors import ConfigError

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="AWS credentials"):
        dbauth.generate(HOST, PORT, USER, REGION)
