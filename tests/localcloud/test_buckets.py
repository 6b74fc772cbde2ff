"""Catalog buckets in the local cloud: moto S3, presigned uploads and downloads that clients use."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest

from functions.catalog import Bucket, Function, Manual

STORAGE = Function(
    name="ops-test-storage",
    capability="ops",
    handler="tests.localcloud.handlers.storage",
    trigger=Manual(),
    buckets=("ops-test-files",),
)
BUCKETS = (Bucket("ops-test-files", "ops", cors_origins=("http://127.0.0.1:5173",)),)


@pytest.fixture
def storage_cloud(tmp_path, redis_url):
    from localcloud import LocalCloud

    with LocalCloud(
        root=tmp_path / ".opsdeck", redis_url=redis_url, catalog=(STORAGE,), buckets=BUCKETS, deploy=False
    ) as local:
        yield local


def test_the_function_finds_its_bucket_by_name(storage_cloud):
    assert storage_cloud.function_env("ops-test-storage")["OPS_TEST_FILES_BUCKET_NAME"] == (
        "opsdeck-local-ops-test-files"
    )


def test_a_client_uploads_through_the_presigned_post_and_downloads_through_the_presigned_get(storage_cloud):
    grant = storage_cloud.invoke("ops-test-storage", {"action": "upload", "key": "images/a.png"})
    assert grant["key"] == "images/a.png"
    assert grant["url"].startswith(storage_cloud.aws_url)
    assert grant["fields"]["Content-Type"] == "image/png"
    body = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    posted = httpx.post(grant["url"], data=grant["fields"], files={"file": ("a.png", body, "image/png")})
    assert posted.status_code in (200, 201, 204), posted.text

    link = storage_cloud.invoke(
        "ops-test-storage", {"action": "download", "key": "images/a.png", "filename": "Ünïcode report.png"}
    )["url"]
    got = httpx.get(link)
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"?n?code report.png\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20report.png"
    )


def test_objects_written_by_the_function_download_through_the_signed_url(storage_cloud):
    storage_cloud.invoke("ops-test-storage", {"action": "put", "key": "exports/r.csv", "body": "a,b\n1,2\n"})
    link = storage_cloud.invoke("ops-test-storage", {"action": "download", "key": "exports/r.csv"})["url"]
    got = httpx.get(link)
    assert got.text == "a,b\n1,2\n"
    assert got.headers["content-type"] == "text/csv"
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=300" in link


def test_the_upload_policy_pins_key_type_size_and_expiry(storage_cloud):
    """S3 enforces the POST policy (moto does not), so the policy itself is what is checked."""
    grant = storage_cloud.invoke("ops-test-storage", {"action": "upload", "key": "images/b.png"})
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": "images/b.png"} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 1024] in conditions
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 0 < (expiration - datetime.now(UTC)).total_seconds() <= 300
