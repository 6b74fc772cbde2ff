"""Catalog buckets: created for the buckets functions use, locked down, wired by name."""

from __future__ import annotations

import pytest

from functions import catalog
from functions.catalog import Bucket, CatalogError, Function, Manual
from tests.infra.conftest import Synth


def _bucket_ids(synth: Synth) -> dict[str, dict]:
    """catalog bucket name → the AWS::S3::Bucket properties (found by the construct's path)."""
    found = {}
    for b in synth.buckets:
        ids = [
            k for k in synth.of_type("AWS::S3::Bucket") if k.startswith(f"Buckets{b.name.replace('-', '')}")
        ]
        if ids:
            (logical_id,) = ids
            found[b.name] = synth.resources[logical_id]["Properties"]
    return found


def test_buckets_both_directions(synth: Synth):
    used = set(catalog.buckets_used(synth.functions, synth.buckets))
    assert set(_bucket_ids(synth)) == used
    assert len(synth.of_type("AWS::S3::Bucket")) == len(used)


def test_every_bucket_is_encrypted_private_tls_only_and_cleans_up(synth: Synth):
    for name, props in _bucket_ids(synth).items():
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert "BucketName" not in props, "S3 names are global: CloudFormation generates them"
        rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
        assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 1
        }
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
    ]
    assert len(policies) == len(_bucket_ids(synth))
    for statements in policies:
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_lifecycle_expiry_and_cors_follow_the_declaration(synthetic: Synth):
    buckets = _bucket_ids(synthetic)
    assert "backoffice-unused" not in buckets  # declared, used by no function: not created
    exports = {r["Id"]: r for r in buckets["backoffice-exports"]["LifecycleConfiguration"]["Rules"]}
    assert exports["expire-objects"]["ExpirationInDays"] == 7
    assert "CorsConfiguration" not in buckets["backoffice-exports"]
    (cors,) = buckets["marketplace-uploads"]["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == ["https://admin.example.com"]
    assert set(cors["AllowedMethods"]) == {"GET", "POST"}


def _fn(**kw) -> Function:
    return Function(
        name="ops-report", capability="ops", handler="functions.ops.report.handler", trigger=Manual(), **kw
    )


@pytest.mark.parametrize(
    ("functions", "buckets", "message"),
    [
        ((_fn(buckets=("ops-missing",)),), (), "uses undeclared bucket 'ops-missing'"),
        (
            (_fn(buckets=("backoffice-x",)),),
            (Bucket("backoffice-x", "backoffice"),),
            "belongs to 'backoffice'",
        ),
        ((), (Bucket("ops-x", "ops"), Bucket("ops-x", "ops")), "declared twice"),
        ((), (Bucket("reports", "ops"),), "must start with ops-"),
        ((), (Bucket("ops-x", "ops", expire_after_days=0),), "expire_after_days"),
        ((), (Bucket("ops-x", "ops", cors_origins=("javascript:alert(1)",)),), "CORS origin"),
    ],
)
def test_the_catalog_refuses_contradictory_buckets(functions, buckets, message):
    with pytest.raises(CatalogError, match=message):
        catalog.validate(functions, buckets)
