"""Typed settings from the environment; secrets from Secrets Manager.

Settings are pydantic models filled from environment variables (field name in
upper case, or the field's alias). ``pydantic-settings`` would do the same but
costs ~120 ms of import per cold start, so ``from_env`` is twenty lines here.

Secrets never travel in plain environment variables on AWS: a function gets the
*id* of a secret (``<NAME>_SECRET_ID``, declared in the catalog) and reads it
through Powertools Parameters, cached for ``max_age`` seconds. Values are
wrapped so that ``repr``/logging never shows them.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .errors import ConfigError
from .naming import secret_id_env

M = TypeVar("M", bound=BaseModel)


def from_env(model: type[M], environ: Mapping[str, str] | None = None, prefix: str = "") -> M:
    """Build ``model`` from environment variables; one clear line on a bad value."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name).upper()
        if key in env and env[key] != "":
            data[name] = env[key]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        info = model.model_fields.get(field)
        key = prefix + ((info.alias if info else None) or field).upper()
        raise ConfigError(f"environment variable {key} is invalid: {err['msg']}") from None


class PlatformSettings(BaseModel):
    """Settings shared by every function. See README "Configuration"."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = "local"
    # Database: a URL (local, tests) or an RDS secret + proxy endpoint (AWS).
    database_url: SecretStr | None = None
    database_secret_id: str | None = None
    database_host: str | None = None
    database_port: int = Field(5432, ge=1, le=65535)
    database_name: str | None = None
    #: the role this function connects as (AWS: its capability's runtime role, via IAM)
    database_user: str | None = None
    #: "iam": a token per new connection instead of a password (RDS Proxy, opsdeck.dbauth)
    database_auth: Literal["password", "iam"] = "password"
    database_ssl: Literal["disable", "require", "verify-full"] = "disable"
    db_pool_size: int = Field(1, ge=0, le=64)
    # Cache
    redis_url: SecretStr | None = None
    redis_auth_secret_id: str | None = None
    # Auth
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_hs256_secret: SecretStr | None = None
    jwt_hs256_secret_id: str | None = None
    jwt_algorithms: str = "RS256,ES256"
    jwt_leeway_s: int = Field(30, ge=0, le=300)
    jwt_roles_claim: str = "roles"
    # HTTP APIs
    cors_allow_origins: str = ""


@functools.cache
def platform() -> PlatformSettings:
    return from_env(PlatformSettings)


class SecretValue(Mapping[str, Any]):
    """A secret's JSON object; behaves like a read-only dict but never prints its values."""

    __slots__ = ("_data", "_name")

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self._name = name
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SecretValue({self._name!r}, keys={sorted(self._data)})"

    __str__ = __repr__


def secret(secret_id: str, *, max_age: int = 300) -> SecretValue:
    """Fetch a JSON secret through Powertools Parameters (cached ``max_age`` seconds).

    A plain-string secret comes back as ``{"value": "..."}``.
    """
    from aws_lambda_powertools.utilities import parameters

    try:
        raw = parameters.get_secret(secret_id, max_age=max_age)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools keeps botocore's message: "An error occurred (ResourceNotFoundException) when ..."
        found = re.search(r"\(([A-Za-z]+(?:Exception|Error|Denied)?)\)", str(exc))
        code = found.group(1) if found else str(exc).splitlines()[0][:120]
        raise ConfigError(f"secret {secret_id!r} cannot be read: {code}") from None
    if isinstance(raw, bytes):
        raw = raw.decode()
    text = str(raw).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"secret {secret_id!r} is not valid JSON") from None
        return SecretValue(secret_id, data)
    return SecretValue(secret_id, {"value": text})


def catalog_secret(name: str, *, environ: Mapping[str, str] | None = None) -> SecretValue | None:
    """The secret the catalog declares as ``name``, or ``None`` when this deployment has none."""
    env = os.environ if environ is None else environ
    secret_id = env.get(secret_id_env(name))
    return secret(secret_id) if secret_id else None
