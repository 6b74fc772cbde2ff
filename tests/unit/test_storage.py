"""opsdeck.storage without a bucket behind it: configuration errors and URL shapes."""

from __future__ import annotations

import pytest
from moto import mock_aws

from opsdeck import aws, storage
from opsdeck.errors import ConfigError


@pytest.fixture
def bucket(monkeypatch):
    with mock_aws():
        aws.reset()
        aws.client("s3").create_bucket(Bucket="physical-exports")
        monkeypatch.setenv("OPS_EXPORTS_BUCKET_NAME", "physical-exports")
        yield "ops-exports"
    aws.reset()


def test_an_unwired_bucket_names_the_missing_variable(monkeypatch):
    monkeypatch.delenv("OPS_EXPORTS_BUCKET_NAME", raising=False)
    with pytest.raises(ConfigError, match="OPS_EXPORTS_BUCKET_NAME is not set"):
        storage.bucket_name("ops-exports")


def test_download_urls_are_virtual_hosted_sigv4_on_aws(bucket):
    url = storage.presigned_download(bucket, "r/1.csv", expires_s=60, filename='q"1.csv')
    assert url.startswith("https://physical-exports.s3.amazonaws.com/r/1.csv?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=60" in url
    assert "response-content-disposition=attachment%3B%20filename%3D%22q1.csv%22" in url


@pytest.mark.parametrize("expires_s", [0, 7 * 24 * 3600 + 1])
def test_expiry_beyond_sigv4s_range_is_refused(bucket, expires_s):
    with pytest.raises(ValueError, match="expires_s"):
        storage.presigned_download(bucket, "k", expires_s=expires_s)
    with pytest.raises(ValueError, match="expires_s"):
        storage.presigned_upload(bucket, "k", content_type="image/png", max_bytes=10, expires_s=expires_s)
