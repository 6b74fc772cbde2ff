"""Migrations on deploy: the catalog's ``Deploy()`` functions run as CloudFormation custom resources.

Each ``Deploy`` function (``ops-migrate``: ``alembic upgrade heads``) is the onEvent handler of
a custom-resource Provider. The resource's properties carry a hash of ``migrations/`` (and the
database endpoint), so CloudFormation sends an Update — and the upgrade runs — whenever a
migration changes or the database is replaced; a failed upgrade fails the deployment, which
rolls back. Every other catalog function depends on these resources: CloudFormation updates
their code and configuration only after the schema is upgraded, so new code never meets an
old schema. The resources also wait for the network and the proxy's target registration, so
the first deployment migrates only once the database is reachable.
"""

from __future__ import annotations

from aws_cdk import CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from functions.catalog import Deploy, Function

from . import bundling
from .config import RETENTION_DAYS, DeployConfig
from .data import BASIC_EXECUTION_ROLE
from .nag import suppress

RESOURCE_TYPE = "Custom::OpsdeckMigrations"


def deploy_functions(functions: tuple[Function, ...]) -> list[Function]:
    return [f for f in functions if isinstance(f.trigger, Deploy)]


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        config: DeployConfig,
        lambdas: dict[str, lambda_.Function],
        database_endpoint: str,
        prerequisites: list[IConstruct],
    ) -> None:
        super().__init__(scope, id)
        self.resources: dict[str, CustomResource] = {}
        deploy = deploy_functions(functions)
        migrations_hash = bundling.migrations_hash()
        for function in deploy:
            provider = cr.Provider(
                self,
                f"{function.name}-provider",
                on_event_handler=lambdas[function.name],
                log_group=logs.LogGroup(
                    self,
                    f"{function.name}-provider-logs",
                    retention=getattr(logs.RetentionDays, RETENTION_DAYS[config.log_retention_days]),
                    removal_policy=RemovalPolicy.DESTROY,
                ),
            )
            resource = CustomResource(
                self,
                function.name,
                service_token=provider.service_token,
                resource_type=RESOURCE_TYPE,
                properties={
                    "MigrationsHash": migrations_hash,
                    "Database": database_endpoint,
                    "Function": function.name,
                },
            )
            for prerequisite in prerequisites:
                resource.node.add_dependency(prerequisite)
            self.resources[function.name] = resource
            suppress(
                provider,
                "IAM4",
                "CDK's custom-resource provider framework function uses AWSLambdaBasicExecutionRole "
                "for its own logs",
                applies_to=[BASIC_EXECUTION_ROLE],
            )
            target = Stack.of(self).get_logical_id(lambdas[function.name].node.default_child)
            suppress(
                provider,
                "IAM5",
                "The provider framework invokes the migration function, qualified or not (<arn>:*)",
                applies_to=[f"Resource::<{target}.Arn>:*"],
            )
        deploy_names = {f.name for f in deploy}
        for name, fn in lambdas.items():
            if name in deploy_names:
                continue
            for resource in self.resources.values():
                # only the AWS::Lambda::Function waits, not its role, log group or permissions
                fn.node.default_child.node.add_dependency(resource.node.default_child)
