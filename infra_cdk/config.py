"""Deployment settings from CDK context, with prod-safe defaults.

One stack per stage: ``-c stage=prod`` → stack ``opsdeck-prod``. The *profile* decides the
defaults: ``dev`` for the stage ``dev`` and per-developer stages ``dev-<name>`` (small
instances, one NAT gateway, data destroyed with the stack), ``prod`` for every other stage
(multi-AZ, deletion protection, data retained). An unknown stage therefore gets the safe
settings; every individual default can still be overridden by its own context key.

Context values arrive as JSON values from ``cdk.json`` or as strings from ``-c key=value``;
``DeployConfig.from_context`` accepts both (``"false"``, ``"3"``, ``"a,b"`` or ``'["a","b"]'``).
docs/deploy.md lists every key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")

#: Placeholder issuer for non-prod stacks without ``jwtIssuer``: every protected route answers
#: 401 (nothing can mint a token for it), so a forgotten setting fails closed.
UNCONFIGURED_ISSUER = "https://issuer.invalid/opsdeck-unconfigured"

# Context keys this module reads (anything else in the context is CDK's own, e.g. feature flags).
KEYS = (
    "stage",
    "profile",
    "stackName",
    "account",
    "region",
    "bundle",
    "layerBoto3",
    "layerBytecode",
    "egress",
    "maxAzs",
    "natGateways",
    "vpcCidr",
    "dbInstanceClass",
    "dbMultiAz",
    "dbAllocatedStorageGb",
    "dbMaxAllocatedStorageGb",
    "dbBackupRetentionDays",
    "cacheNodeType",
    "cacheReplicas",
    "deletionProtection",
    "retainData",
    "logRetentionDays",
    "logLevel",
    "jwtIssuer",
    "jwtAudience",
    "jwtJwksUrl",
    "jwtAlgorithms",
    "corsAllowOrigins",
    "throttleRateLimit",
    "throttleBurstLimit",
    "alarmEmails",
    "apiLatencyP95Ms",
    "api5xxPerFiveMinutes",
    "queueAgeAlarmSeconds",
    "dbConnectionsAlarm",
    "secretArns",
    "scheduleExpressions",
)


class ConfigError(ValueError):
    """A context value is invalid; the message names the key."""


@dataclass(frozen=True)
class DeployConfig:
    stage: str
    profile: Literal["dev", "prod"]
    stack_name: str
    account: str | None = None
    region: str | None = None
    # assets
    bundle: bool = True
    layer_boto3: bool = False
    #: "sourceless" (third-party bytecode only), "pycache" (sources + bytecode) or "none"
    layer_bytecode: Literal["sourceless", "pycache", "none"] = "sourceless"
    # network
    egress: Literal["nat", "endpoints"] = "nat"
    max_azs: int = 2
    nat_gateways: int = 1
    vpc_cidr: str = "10.40.0.0/16"
    # data
    db_instance_class: str = "t4g.small"
    db_multi_az: bool = False
    db_allocated_storage_gb: int = 20
    db_max_allocated_storage_gb: int = 100
    db_backup_retention_days: int = 3
    cache_node_type: str = "cache.t4g.micro"
    cache_replicas: int = 0
    deletion_protection: bool = False
    retain_data: bool = False
    # functions
    log_retention_days: int = 14
    log_level: str = "INFO"
    # auth + HTTP
    jwt_issuer: str = UNCONFIGURED_ISSUER
    jwt_audience: str = "opsdeck"
    jwt_jwks_url: str = ""
    jwt_algorithms: str = "RS256,ES256"
    cors_allow_origins: tuple[str, ...] = ()
    throttle_rate_limit: int = 50
    throttle_burst_limit: int = 100
    # monitoring
    alarm_emails: tuple[str, ...] = ()
    api_latency_p95_ms: int = 1000
    api_5xx_per_five_minutes: int = 5
    queue_age_alarm_seconds: int = 900
    db_connections_alarm: int = 100
    # secrets: catalog secret name → ARN of an existing secret (else the stack creates it)
    secret_arns: Mapping[str, str] = field(default_factory=dict)
    #: schedules: catalog schedule name → EventBridge expression replacing the catalog's (the
    #: names are checked against the catalog by ``infra_cdk.schedules.schedule_expressions``)
    schedule_expressions: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.profile == "prod"

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeployConfig:
        """Build from ``get(key)`` (e.g. ``app.node.try_get_context``); ``None`` = not set."""
        stage = _text(get, "stage", "dev")
        if not _STAGE.match(stage):
            raise ConfigError(f"context stage={stage!r}: lower-case letters, digits and '-', 2-20 characters")
        derived = "dev" if stage == "dev" or stage.startswith("dev-") else "prod"
        profile = _text(get, "profile", derived)
        if profile not in ("dev", "prod"):
            raise ConfigError(f"context profile={profile!r}: use dev or prod")
        prod = profile == "prod"
        max_azs = _int(get, "maxAzs", 2, low=2, high=6)
        egress = _text(get, "egress", "nat")
        if egress not in ("nat", "endpoints"):
            raise ConfigError(f"context egress={egress!r}: use nat or endpoints")
        issuer = _text(get, "jwtIssuer", "")
        if not issuer:
            if prod:
                raise ConfigError(
                    "context jwtIssuer is required for a prod-profile stack "
                    "(e.g. -c jwtIssuer=https://cognito-idp.<region>.amazonaws.com/<pool id>)"
                )
            issuer = UNCONFIGURED_ISSUER
        if not issuer.startswith("https://"):
            raise ConfigError(f"context jwtIssuer={issuer!r}: API Gateway needs an https:// issuer URL")
        jwks = _text(get, "jwtJwksUrl", "") or issuer.rstrip("/") + "/.well-known/jwks.json"
        retention = _int(get, "logRetentionDays", 90 if prod else 14)
        if retention not in RETENTION_DAYS:
            raise ConfigError(f"context logRetentionDays={retention}: one of {sorted(RETENTION_DAYS)}")
        log_level = _text(get, "logLevel", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"context logLevel={log_level!r}: DEBUG, INFO, WARNING or ERROR")
        secret_arns = get("secretArns") or {}
        if isinstance(secret_arns, str):
            try:
                secret_arns = json.loads(secret_arns)
            except ValueError:
                raise ConfigError("context secretArns must be a JSON object name → ARN") from None
        if not isinstance(secret_arns, dict) or not all(
            isinstance(v, str) and v.startswith("arn:") for v in secret_arns.values()
        ):
            raise ConfigError("context secretArns must be a JSON object name → secret ARN")
        return cls(
            stage=stage,
            profile=profile,
            stack_name=_text(get, "stackName", f"opsdeck-{stage}"),
            account=_text(get, "account", "") or None,
            region=_text(get, "region", "") or None,
            bundle=_bool(get, "bundle", True),
            layer_boto3=_bool(get, "layerBoto3", False),
            layer_bytecode=_bytecode(get, "layerBytecode"),
            egress=egress,
            max_azs=max_azs,
            nat_gateways=_int(get, "natGateways", max_azs if prod else 1, low=0, high=max_azs),
            vpc_cidr=_text(get, "vpcCidr", "10.40.0.0/16"),
            db_instance_class=_text(get, "dbInstanceClass", "m7g.large" if prod else "t4g.small"),
            db_multi_az=_bool(get, "dbMultiAz", prod),
            db_allocated_storage_gb=_int(get, "dbAllocatedStorageGb", 100 if prod else 20, low=20),
            db_max_allocated_storage_gb=_int(get, "dbMaxAllocatedStorageGb", 1000 if prod else 100, low=20),
            db_backup_retention_days=_int(get, "dbBackupRetentionDays", 14 if prod else 3, low=1, high=35),
            cache_node_type=_text(get, "cacheNodeType", "cache.m7g.large" if prod else "cache.t4g.micro"),
            cache_replicas=_int(get, "cacheReplicas", 1 if prod else 0, low=0, high=5),
            deletion_protection=_bool(get, "deletionProtection", prod),
            retain_data=_bool(get, "retainData", prod),
            log_retention_days=retention,
            log_level=log_level,
            jwt_issuer=issuer,
            jwt_audience=_text(get, "jwtAudience", "opsdeck"),
            jwt_jwks_url=jwks,
            jwt_algorithms=_text(get, "jwtAlgorithms", "RS256,ES256"),
            cors_allow_origins=_list(get, "corsAllowOrigins", () if prod else ("*",)),
            throttle_rate_limit=_int(get, "throttleRateLimit", 500 if prod else 50, low=1),
            throttle_burst_limit=_int(get, "throttleBurstLimit", 1000 if prod else 100, low=1),
            alarm_emails=_list(get, "alarmEmails", ()),
            api_latency_p95_ms=_int(get, "apiLatencyP95Ms", 1000, low=1),
            api_5xx_per_five_minutes=_int(get, "api5xxPerFiveMinutes", 5, low=1),
            queue_age_alarm_seconds=_int(get, "queueAgeAlarmSeconds", 900, low=60),
            db_connections_alarm=_int(get, "dbConnectionsAlarm", 100, low=1),
            secret_arns=dict(secret_arns),
            schedule_expressions=_schedule_expressions(get, "scheduleExpressions"),
        )


#: CloudWatch Logs accepts only these retention periods.
RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}


def _schedule_expressions(get: Callable[[str], Any], key: str) -> dict[str, str]:
    """``{"<catalog schedule name>": "cron(…)" | "rate(…)"}``, each expression checked as AWS would."""
    # the parser the local cloud and ops-api use (layers/common/python; stdlib only). Imported
    # here, not at module level: ``python -m infra_cdk`` imports this module before infra_cdk.app
    # puts the layer on sys.path.
    from opsdeck.schedules import ScheduleExpressionError, parse

    value = get(key) or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"context {key} must be a JSON object schedule name → expression") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"context {key} must be a JSON object schedule name → expression (strings)")
    out: dict[str, str] = {}
    for name, expression in value.items():
        try:
            parse(expression)
        except ScheduleExpressionError as exc:
            raise ConfigError(f"context {key}[{name!r}]: {exc}") from None
        out[name.strip()] = expression.strip()
    return out


def _text(get: Callable[[str], Any], key: str, default: str) -> str:
    value = get(key)
    return default if value is None else str(value).strip()


def _bool(get: Callable[[str], Any], key: str, default: bool) -> bool:
    value = get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"context {key}={value!r}: use true or false")


def _bytecode(get: Callable[[str], Any], key: str) -> Literal["sourceless", "pycache", "none"]:
    """``sourceless`` (also ``true``, the default), ``pycache`` or ``none`` (also ``false``)."""
    value = get(key)
    text = "sourceless" if value is None else str(value).strip().lower()
    if text in ("sourceless", "pycache", "none"):
        return text  # type: ignore[return-value]
    try:
        return "sourceless" if _bool(get, key, True) else "none"
    except ConfigError:
        raise ConfigError(
            f"context {key}={value!r}: use sourceless (or true), pycache, or none (or false)"
        ) from None


def _int(
    get: Callable[[str], Any], key: str, default: int, *, low: int | None = None, high: int | None = None
) -> int:
    value = get(key)
    if value is None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"context {key}={value!r}: not an integer") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(
            f"context {key}={number}: must be within {low}..{high if high is not None else '∞'}"
        )
    return number


def _list(get: Callable[[str], Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = get(key)
    if value is None:
        return default
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("["):
        try:
            return tuple(str(v).strip() for v in json.loads(text) if str(v).strip())
        except ValueError:
            raise ConfigError(f"context {key}: invalid JSON list") from None
    return tuple(v.strip() for v in text.split(",") if v.strip())
