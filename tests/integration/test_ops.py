"""The ops functions through their Lambda handlers, driven by the sample events in events/."""

from __future__ import annotations

import json

import pytest

from functions import catalog
from functions.ops import api, migrate
from tests.support import LambdaContext, env, load_event


@pytest.mark.capability("ops")  # as the ops runtime role, like the deployed ops-api
def test_health_ok_with_database_and_cache(db, redis_url):
    response = api.handler(load_event("ops-api/health.json"), LambdaContext("ops-api"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"
    assert response["headers"]["x-request-id"] == "c2FtcGxlLWhlYWx0aA=="


@pytest.mark.capability("ops")
def test_health_names_what_is_down(db):
    with env(REDIS_URL="redis://127.0.0.1:1/0"):
        response = api.handler(load_event("ops-api/health.json"), LambdaContext("ops-api"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 503
    assert response["headers"]["content-type"] == "application/problem+json"
    assert body["detail"] == "unavailable: cache"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "down"


def test_health_without_configuration_is_503_not_500():
    with env(DATABASE_URL=None, REDIS_URL=None):
        response = api.handler(load_event("ops-api/health.json"), LambdaContext("ops-api"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 503
    assert "DATABASE_URL is not set" in body["checks"]["database"]["error"]
    assert "REDIS_URL is not set" in body["checks"]["cache"]["error"]


def test_functions_lists_the_catalog():
    response = api.handler(load_event("ops-api/functions.json"), LambdaContext("ops-api"))
    listed = {f["name"]: f for f in json.loads(response["body"])["functions"]}
    assert set(listed) == {f.name for f in catalog.FUNCTIONS}
    assert listed["ops-migrate"]["trigger"] == {"kind": "deploy"}
    assert {"route": "GET /ops/health", "authorizer": None} in listed["ops-api"]["trigger"]["routes"]


def test_migrate_on_deploy_records_the_run(db):
    from sqlalchemy import text

    before = db.execute(text("SELECT count(*) FROM ops.migration_runs")).scalar()
    result = migrate.handler(
        load_event("ops-migrate/cloudformation-update.json"), LambdaContext("ops-migrate")
    )
    assert result["PhysicalResourceId"] == "opsdeck-migrations"
    assert "ops_0003" in result["Data"]["Heads"].split(",")
    last = db.execute(text("SELECT trigger, heads FROM ops.migration_runs ORDER BY id DESC LIMIT 1")).one()
    assert db.execute(text("SELECT count(*) FROM ops.migration_runs")).scalar() == before + 1
    assert last.trigger == "deploy"


def test_migrate_delete_touches_nothing(db):
    result = migrate.handler(
        {"RequestType": "Delete", "PhysicalResourceId": "opsdeck-migrations"}, LambdaContext()
    )
    assert result == {"PhysicalResourceId": "opsdeck-migrations"}


def test_migrate_sets_each_runtime_roles_password_from_its_secret(db, aws, database_url, monkeypatch):
    """On AWS the migrator reads the runtime roles' secrets (those RDS Proxy logs in with)."""
    import json

    import boto3
    from sqlalchemy import text

    from localcloud.services import database_of, role_password
    from opsdeck.migrations import set_passwords
    from opsdeck.naming import database_role

    role = database_role(database_of(database_url), "backoffice", "runtime")
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    arn = sm.create_secret(
        Name="opsdeck-test/database-backoffice",
        SecretString=json.dumps({"username": role, "password": "rotated-by-secrets-manager"}),
    )["ARN"]
    monkeypatch.setenv("DATABASE_ROLE_SECRET_IDS", json.dumps({"backoffice": arn}))
    verifier = text("SELECT rolpassword FROM pg_authid WHERE rolname = :r")
    before = db.execute(verifier, {"r": role}).scalar()
    try:
        migrate.handler(load_event("ops-migrate/cloudformation-update.json"), LambdaContext("ops-migrate"))
        after = db.execute(verifier, {"r": role}).scalar()
        assert after != before and after.startswith("SCRAM-SHA-256$")
    finally:
        with db.engine.begin() as conn:  # back to the session's local password
            set_passwords(conn, {"backoffice": role_password(database_url, "backoffice")})


def test_migrate_refuses_a_role_secret_without_a_password(aws, monkeypatch):
    import json

    import boto3
    import pytest

    from opsdeck.errors import ConfigError

    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="opsdeck-test/database-broken", SecretString=json.dumps({"username": "x"})
    )["ARN"]
    monkeypatch.setenv("DATABASE_ROLE_SECRET_IDS", json.dumps({"backoffice": arn}))
    with pytest.raises(ConfigError, match="password"):
        migrate.role_passwords()


def test_console_page_through_the_handler_has_a_strict_policy():
    response = api.handler(load_event("ops-api/console.json"), LambdaContext("ops-api"))
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "text/html; charset=utf-8"
    csp = response["headers"]["content-security-policy"]
    assert csp.startswith("default-src 'self'; script-src 'self'; style-src 'self'")
    assert response["headers"]["x-frame-options"] == "DENY"
    assert '<script src="/ops/console/console.js" defer></script>' in response["body"]


def test_console_data_needs_a_token():
    response = api.handler(load_event("ops-api/queues-without-token.json"), LambdaContext("ops-api"))
    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["headers"]["www-authenticate"] == "Bearer"


def test_the_console_ships_in_the_function_code_asset():
    from infra_cdk import bundling

    files = {str(p) for p in bundling.source_files(bundling.ROOT / "functions", bundling.ROOT)}
    assert {
        "functions/ops/static/index.html",
        "functions/ops/static/console.js",
        "functions/ops/static/console.css",
        "functions/ops/static/favicon.svg",
    } <= files
