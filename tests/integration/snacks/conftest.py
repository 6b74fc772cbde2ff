"""snacks integration fixtures: moto's Secrets Manager holds the signing keys, the in-process
Redis fake the counts, the session's PostgreSQL the rest; every call goes through
``functions.snacks.api.handler`` with API Gateway v2 events (``Client``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.snacks.helpers import Client
from tests.support import env


@pytest.fixture
def signing_secret(aws) -> Iterator[str]:
    import boto3

    from functions.snacks import tokens

    value = tokens.new_secret_value("test-1")
    arn = boto3.client("secretsmanager").create_secret(
        Name="snacks-signing-keys", SecretString=json.dumps(value)
    )["ARN"]
    boto3.client("s3").create_bucket(Bucket="test-snacks-images")
    with env(
        SNACKS_SIGNING_KEYS_SECRET_ID=arn,
        SNACKS_IMAGES_BUCKET_NAME="test-snacks-images",
        SNACKS_SIGNIN_IP_BURST="1000",
        SNACKS_SIGNIN_ACCOUNT_BURST="1000",
    ):
        tokens.reset()
        yield arn
    tokens.reset()


@pytest.fixture
def client(db, redis_url, signing_secret) -> Client:
    """The API over the rolled-back test transaction."""
    return Client()


@pytest.fixture
def committed_client(committed_db, redis_url, signing_secret) -> Iterator[Client]:
    """The API with real commits (threads, concurrency); tables truncated afterwards."""
    with env(DB_POOL_SIZE="8"):
        yield Client()
