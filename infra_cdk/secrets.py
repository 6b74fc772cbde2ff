"""Secrets the catalog declares (``Function.secrets``): one Secrets Manager secret per name.

The stack creates ``<stack>/<name>`` holding a placeholder (``{"unset": true, ...}``); the owner
puts the real JSON value after the first deploy (docs/deploy.md lists the names and shapes).
Functions get the ARN as ``<NAME>_SECRET_ID`` and read it through ``opsdeck.settings``.
A secret that already exists elsewhere (e.g. one SP-API credential shared by stacks) is
imported instead with context ``secretArns={"<name>": "<arn>"}``.
"""

from __future__ import annotations

import json
import re

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions.catalog import Function

from .config import DeployConfig
from .nag import suppress
from .names import Names

_COMPLETE_ARN = re.compile(r"-[A-Za-z0-9]{6}$")


def catalog_secrets(functions: tuple[Function, ...]) -> dict[str, list[str]]:
    """Secret name → the functions that read it."""
    users: dict[str, list[str]] = {}
    for f in functions:
        for s in f.secrets:
            users.setdefault(s, []).append(f.name)
    return dict(sorted(users.items()))


class CatalogSecrets(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        config: DeployConfig,
        names: Names,
    ) -> None:
        super().__init__(scope, id)
        self.secrets: dict[str, secretsmanager.ISecret] = {}
        for name, users in catalog_secrets(functions).items():
            arn = config.secret_arns.get(name)
            if arn:
                self.secrets[name] = (
                    secretsmanager.Secret.from_secret_complete_arn(self, name, arn)
                    if _COMPLETE_ARN.search(arn)
                    else secretsmanager.Secret.from_secret_partial_arn(self, name, arn)
                )
                continue
            secret = secretsmanager.Secret(
                self,
                name,
                secret_name=names.secret(name),
                description=f"opsdeck {name}, read by {', '.join(users)}; "
                "put its value after the first deploy",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"unset": True}),
                    generate_string_key="placeholder",
                    exclude_punctuation=True,
                ),
                removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            )
            suppress(
                secret,
                "SMG4",
                "A third-party credential (e.g. SP-API, Slack, Apify): it is rotated at its provider "
                "and then put here by its owner; Secrets Manager cannot rotate it",
            )
            self.secrets[name] = secret
