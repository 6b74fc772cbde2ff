"""Each catalog function: runtime, layer, logs, tracing, VPC placement, ordering after migrations,
and its environment exactly per contract C."""

from __future__ import annotations

import pytest

from functions.catalog import Deploy
from infra_cdk.data import DATABASE_NAME
from infra_cdk.network import in_vpc
from opsdeck.naming import (
    bucket_name_env,
    function_name_env,
    queue_url_env,
    schedule_rule_env,
    secret_id_env,
    secret_prefix_env,
)
from tests.infra.conftest import IMPORTED_SECRET_ARN, Synth


def _layers(synth: Synth) -> tuple[str, dict[str, str]]:
    """The common layer's logical id, and function extra → its layer's logical id."""
    common, extras = [], {}
    for layer_id, layer in synth.of_type("AWS::Lambda::LayerVersion").items():
        props = layer["Properties"]
        assert props["CompatibleRuntimes"] == ["python3.12"]
        assert props["CompatibleArchitectures"] == ["arm64"]
        if props["Description"].startswith("opsdeck shared runtime"):
            common.append(layer_id)
        else:
            extra = props["Description"].split("'")[1]
            assert extra not in extras
            extras[extra] = layer_id
    assert len(common) == 1
    return common[0], extras


def test_shared_defaults(synth: Synth):
    layer_id, extra_ids = _layers(synth)
    assert set(extra_ids) == {extra for f in synth.functions for extra in f.extras}
    code_keys = set()
    for f in synth.functions:
        props = synth.lambda_props(f.name)
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        # the common layer first, then the function's own extras (and no other function's)
        assert props["Layers"] == [{"Ref": layer_id}, *({"Ref": extra_ids[e]} for e in f.extras)]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        code_keys.add(str(props["Code"]))
        log_group = synth.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert log_group["LogGroupName"] == f"/aws/lambda/{synth.name('function', f.name)}"
        assert log_group["RetentionInDays"] == synth.config.log_retention_days
    assert len(code_keys) == 1, "every function shares the one code asset"


def test_graphql_and_alembic_reach_only_the_functions_that_import_them(real: Synth):
    _, extra_ids = _layers(real)
    holders = {
        extra: sorted(
            f.name for f in real.functions if {"Ref": layer_id} in real.lambda_props(f.name)["Layers"]
        )
        for extra, layer_id in extra_ids.items()
    }
    assert holders == {"graphql": ["product-monitor-graphql"], "migrations": ["ops-migrate"]}


def test_only_database_and_cache_functions_run_in_the_vpc(synth: Synth):
    groups = {
        k: v["Properties"]["GroupDescription"] for k, v in synth.of_type("AWS::EC2::SecurityGroup").items()
    }
    for f in synth.functions:
        vpc_config = synth.lambda_props(f.name).get("VpcConfig")
        if not in_vpc(f):
            assert vpc_config is None, f.name
            continue
        attached = {groups[g["Fn::GetAtt"][0]].split(":")[0] for g in vpc_config["SecurityGroupIds"]}
        expected = {"Functions that use the database"} if f.database else set()
        expected |= {"Functions that use the cache"} if f.cache else set()
        assert attached == expected, f.name


def test_functions_wait_for_migrations(synth: Synth):
    migrations = set(synth.of_type("Custom::OpsdeckMigrations"))
    assert migrations
    for f in synth.functions:
        depends = set(synth.resources[synth.lambda_id(f.name)].get("DependsOn", []))
        if isinstance(f.trigger, Deploy):
            assert not depends & migrations
        else:
            assert migrations <= depends, f.name


def _expected_environment(synth: Synth, f) -> dict:
    config = synth.config
    env = dict(f.runtime_environment(config.stage))
    env["POWERTOOLS_LOG_LEVEL"] = config.log_level
    env.update(
        {
            "JWT_ISSUER": config.jwt_issuer,
            "JWT_AUDIENCE": config.jwt_audience,
            "JWT_JWKS_URL": config.jwt_jwks_url,
            "JWT_ALGORITHMS": config.jwt_algorithms,
        }
    )
    if f.operates_stack:  # the ops console derives this stack's physical names
        env["OPSDECK_RESOURCE_PREFIX"] = config.stack_name + "-"
    for queue in f.sends_to:
        queue_obj = next(g.trigger for g in synth.functions if getattr(g.trigger, "name", None) == queue)
        env[queue_url_env(queue)] = {"Ref": synth.queue_id(synth.name("queue", queue_obj))}
    for secret in f.secrets:
        if secret in config.secret_arns:
            env[secret_id_env(secret)] = config.secret_arns[secret]
        else:
            (secret_id,) = [
                k
                for k, v in synth.of_type("AWS::SecretsManager::Secret").items()
                if v["Properties"].get("Name") == synth.name("secret", secret)
            ]
            env[secret_id_env(secret)] = {"Ref": secret_id}
    for schedule in f.controls_schedules:
        env[schedule_rule_env(schedule)] = synth.name("rule", schedule)
    for other in f.invokes:
        env[function_name_env(other)] = synth.name("function", other)
    for prefix in f.secret_prefixes:
        env[secret_prefix_env(prefix)] = synth.name("secret", prefix) + "/"
    for bucket in f.buckets:
        (bucket_id,) = [
            k for k in synth.of_type("AWS::S3::Bucket") if k.startswith(f"Buckets{bucket.replace('-', '')}")
        ]
        env[bucket_name_env(bucket)] = {"Ref": bucket_id}
    return env


def test_environment_is_contract_c(synth: Synth):
    (proxy_id,) = synth.of_type("AWS::RDS::DBProxy")
    (cache_id,) = synth.of_type("AWS::ElastiCache::ReplicationGroup")
    for f in synth.functions:
        actual = dict(synth.lambda_props(f.name)["Environment"]["Variables"])
        database = {k: actual.pop(k) for k in list(actual) if k.startswith("DATABASE_")}
        cache = {k: actual.pop(k) for k in list(actual) if k.startswith("REDIS_")}
        assert actual == _expected_environment(synth, f), f.name
        assert set(actual) >= set(f.wiring_environment())
        if f.database:
            assert database["DATABASE_HOST"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}
            assert database["DATABASE_NAME"] == DATABASE_NAME
            assert database["DATABASE_SSL"] == "verify-full"
            assert database["DATABASE_AUTH"] == "iam"  # no password, no secret: test_database_auth.py
            assert "DATABASE_SECRET_ID" not in database and "DATABASE_URL" not in database
        else:
            assert database == {}, f.name
        if f.cache:
            assert "rediss://" in str(cache["REDIS_URL"]) and cache_id in str(cache["REDIS_URL"])
            assert "Ref" in cache["REDIS_AUTH_SECRET_ID"]
        else:
            assert cache == {}, f.name
        for value in (*database.values(), *cache.values(), *actual.values()):
            assert "password" not in str(value).lower()


def test_imported_secret_is_wired_by_arn(synthetic: Synth):
    props = synthetic.lambda_props("marketplace-sync")
    assert props["Environment"]["Variables"]["MARKETPLACE_SPAPI_SECRET_ID"] == IMPORTED_SECRET_ARN
    names = {v["Properties"].get("Name") for v in synthetic.of_type("AWS::SecretsManager::Secret").values()}
    assert synthetic.name("secret", "marketplace-spapi") not in names
    assert synthetic.name("secret", "marketplace-slack") in names


def test_catalog_environment_may_not_shadow_platform_settings():
    from dataclasses import replace

    from infra_cdk.app import build_app
    from infra_cdk.functions import CatalogEnvironmentError
    from tests.infra.conftest import SYNTHETIC, SYNTHETIC_BUCKETS

    bad = tuple(
        replace(f, environment={"DATABASE_HOST": "db.example.com"}) if f.name == "backoffice-api" else f
        for f in SYNTHETIC
    )
    with pytest.raises(CatalogEnvironmentError, match="DATABASE_HOST"):
        build_app({"bundle": "false"}, functions=bad, buckets=SYNTHETIC_BUCKETS, nag=False)
