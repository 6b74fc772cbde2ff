"""Endpoints, credentials and their safety rules."""

from __future__ import annotations

import json

import pytest

from functions.marketplace.settings import (
    AMAZON_LWA_URL,
    MarketplaceSettings,
    credentials,
    slack_webhook_url,
)
from opsdeck.errors import NotConfigured
from tests.support import env


def test_endpoint_by_environment_and_region():
    assert MarketplaceSettings().endpoint == "https://sellingpartnerapi-na.amazon.com"
    eu_sandbox = MarketplaceSettings(spapi_environment="sandbox", spapi_region="eu")
    assert eu_sandbox.endpoint == "https://sandbox.sellingpartnerapi-eu.amazon.com"
    assert eu_sandbox.sandbox
    assert (
        MarketplaceSettings(spapi_endpoint="http://127.0.0.1:9/spapi/").endpoint == "http://127.0.0.1:9/spapi"
    )


def test_amazon_endpoints_always_use_amazon_lwa_and_published_rates():
    """Simulator variables left in the environment must never redirect credentials or speed up Amazon."""
    leftover = {"lwa_token_url": "http://127.0.0.1:9/lwa", "spapi_rate_scale": 50}
    amazon = MarketplaceSettings(**leftover)
    assert (amazon.token_url, amazon.rate_scale) == (AMAZON_LWA_URL, 1.0)
    local = MarketplaceSettings(spapi_endpoint="http://127.0.0.1:9/spapi", **leftover)
    assert (local.token_url, local.rate_scale) == ("http://127.0.0.1:9/lwa", 50)


def test_credentials_from_the_environment():
    s = MarketplaceSettings(spapi_client_id="id", spapi_client_secret="cs", spapi_refresh_token="rt")
    creds = credentials(s)
    assert (creds.client_id, creds.client_secret, creds.refresh_token) == ("id", "cs", "rt")
    assert "cs" not in repr(creds) and "rt" not in repr(creds)
    other = credentials(
        MarketplaceSettings(spapi_client_id="id", spapi_client_secret="cs", spapi_refresh_token="r2")
    )
    assert creds.fingerprint != other.fingerprint  # another seller authorisation, another quota


def test_missing_credentials_name_what_is_missing():
    with env(MARKETPLACE_SPAPI_SECRET_ID=None), pytest.raises(NotConfigured) as caught:
        credentials(MarketplaceSettings(spapi_client_id="id"))
    assert caught.value.status == 503
    assert caught.value.detail == (
        "Missing SP-API credentials: set SPAPI_CLIENT_SECRET, SPAPI_REFRESH_TOKEN "
        "(on AWS: the marketplace-spapi secret with client_id, client_secret, refresh_token)"
    )


def test_credentials_and_webhook_from_catalog_secrets(aws):
    from opsdeck.aws import client

    sm = client("secretsmanager")
    spapi = sm.create_secret(
        Name="opsdeck/marketplace-spapi",
        SecretString=json.dumps({"client_id": "amzn1.id", "client_secret": "s", "refresh_token": "Atzr|x"}),
    )["ARN"]
    slack = sm.create_secret(
        Name="opsdeck/marketplace-slack", SecretString=json.dumps({"webhook_url": "https://h/x"})
    )
    partial = sm.create_secret(Name="opsdeck/partial", SecretString=json.dumps({"client_id": "amzn1.id"}))[
        "ARN"
    ]
    with env(MARKETPLACE_SPAPI_SECRET_ID=spapi, MARKETPLACE_SLACK_SECRET_ID=slack["ARN"]):
        assert credentials(MarketplaceSettings()).refresh_token == "Atzr|x"
        assert slack_webhook_url(MarketplaceSettings()) == "https://h/x"
    with (
        env(MARKETPLACE_SPAPI_SECRET_ID=partial),
        pytest.raises(NotConfigured, match="lacks client_secret, refresh"),
    ):
        credentials(MarketplaceSettings())
    with env(MARKETPLACE_SLACK_SECRET_ID=None):
        assert slack_webhook_url(MarketplaceSettings()) is None
