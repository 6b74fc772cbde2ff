"""Context → DeployConfig: prod-safe defaults, per-developer stages, clear errors."""

from __future__ import annotations

import pytest

from infra_cdk.config import UNCONFIGURED_ISSUER, ConfigError, DeployConfig
from infra_cdk.names import Names, ResourceNameError


def config(**context) -> DeployConfig:
    return DeployConfig.from_context(context.get)


def test_dev_defaults_are_cheap_and_disposable():
    c = config()
    assert (c.stage, c.profile, c.stack_name) == ("dev", "dev", "opsdeck-dev")
    assert not c.deletion_protection and not c.retain_data and not c.db_multi_az
    assert c.nat_gateways == 1 and c.cache_replicas == 0
    assert c.jwt_issuer == UNCONFIGURED_ISSUER  # fails closed until configured


def test_per_developer_stacks_use_the_dev_profile():
    c = config(stage="dev-alice")
    assert c.profile == "dev" and c.stack_name == "opsdeck-dev-alice"


@pytest.mark.parametrize("stage", ["prod", "staging", "eu"])
def test_any_other_stage_is_prod_safe(stage):
    c = config(stage=stage, jwtIssuer="https://issuer.example.com")
    assert c.profile == "prod"
    assert c.deletion_protection and c.retain_data and c.db_multi_az
    assert c.cache_replicas == 1 and c.nat_gateways == c.max_azs
    assert c.log_retention_days == 90 and c.cors_allow_origins == ()


def test_prod_requires_an_issuer():
    with pytest.raises(ConfigError, match="jwtIssuer is required"):
        config(stage="prod")


def test_cli_strings_and_json_values_are_accepted():
    c = config(
        stage="dev",
        dbMultiAz="true",
        cacheReplicas="2",
        alarmEmails="a@example.com, b@example.com",
        corsAllowOrigins='["https://a.example.com"]',
        secretArns='{"marketplace-spapi": "arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf"}',
        jwtIssuer="https://issuer.example.com/pool/",
    )
    assert c.db_multi_az is True and c.cache_replicas == 2
    assert c.alarm_emails == ("a@example.com", "b@example.com")
    assert c.cors_allow_origins == ("https://a.example.com",)
    assert c.secret_arns["marketplace-spapi"].endswith("x-AbCdEf")
    assert c.jwt_jwks_url == "https://issuer.example.com/pool/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, "sourceless"),
        ("true", "sourceless"),
        (True, "sourceless"),
        ("sourceless", "sourceless"),
        ("pycache", "pycache"),
        ("PyCache", "pycache"),
        ("none", "none"),
        ("false", "none"),
        (False, "none"),
    ],
)
def test_layer_bytecode_modes(value, mode):
    assert config(layerBytecode=value).layer_bytecode == mode


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "Prod"}, "stage"),
        ({"layerBytecode": "sometimes"}, "layerBytecode"),
        ({"egress": "vpn"}, "egress"),
        ({"dbMultiAz": "maybe"}, "dbMultiAz"),
        ({"maxAzs": "1"}, "maxAzs"),
        ({"logRetentionDays": "10"}, "logRetentionDays"),
        ({"jwtIssuer": "http://plain.example.com"}, "https"),
        ({"secretArns": "{not json"}, "secretArns"),
        ({"scheduleExpressions": "{not json"}, "scheduleExpressions"),
        ({"scheduleExpressions": '["rate(1 hour)"]'}, "scheduleExpressions"),
        ({"scheduleExpressions": {"product-monitor-daily": 30}}, "scheduleExpressions"),
    ],
)
def test_bad_values_name_their_key(context, message):
    with pytest.raises(ConfigError, match=message):
        config(**context)


def test_schedule_expressions_from_the_cli_or_cdk_json():
    cli = config(scheduleExpressions='{"product-monitor-daily": " cron(0 2 * * ? *) "}')
    assert cli.schedule_expressions == {"product-monitor-daily": "cron(0 2 * * ? *)"}
    json_value = config(scheduleExpressions={"product-monitor-health-sample": "rate(3 hours)"})
    assert json_value.schedule_expressions == {"product-monitor-health-sample": "rate(3 hours)"}
    assert config().schedule_expressions == {}


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 25 * * ? *)", "hours value 25 is outside 0-23"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 2 * * ?)", "6 fields"),
        ("rate(1 hours)", "singular unit"),
        ("every day", "neither cron"),
    ],
)
def test_an_invalid_schedule_expression_names_the_key_the_schedule_and_why(expression, reason):
    with pytest.raises(ConfigError) as raised:
        config(scheduleExpressions={"product-monitor-daily": expression})
    message = str(raised.value)
    assert message.startswith("context scheduleExpressions['product-monitor-daily']: ")
    assert reason in message


def test_names_respect_aws_limits():
    names = Names("opsdeck-dev")
    assert names.function("ops-api") == "opsdeck-dev-ops-api"
    assert names.rule("marketplace-orders-sync") == "opsdeck-dev-marketplace-orders-sync"
    with pytest.raises(ResourceNameError, match="function name"):
        Names("opsdeck-dev-a-very-long-developer-name").function("backoffice-some-long-function-name")


def test_unknown_context_keys_are_reported(tmp_path):
    from aws_cdk.assertions import Annotations, Match

    from infra_cdk.app import build_app
    from tests.infra.conftest import SYNTHETIC

    _, stack = build_app(
        {"bundle": "false", "dbMultiAZ": "true"}, functions=SYNTHETIC[1:2], outdir=str(tmp_path), nag=False
    )
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("unknown context key.*dbMultiAZ"))
