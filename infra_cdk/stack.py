"""The opsdeck stack: a thin composition of one construct per concern, from the catalog.

``OpsdeckStack(app, config=…, functions=catalog.FUNCTIONS)`` — the function tuple is a
parameter so that tests can synthesize a synthetic catalog that exercises every trigger and
resource kind. Nothing here names a particular function: a new catalog entry becomes a Lambda,
its trigger, queues, permissions, alarms and dashboard widgets without a CDK edit.

Order: network → data → catalog secrets and buckets → layer and code → queues → functions → event
source mappings → schedules → HTTP API → migrations (every function waits for them) →
monitoring.
"""

from __future__ import annotations

from aws_cdk import Aspects, AssetHashType, CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import catalog
from functions.catalog import Bucket, Function

from . import bundling
from .api import HttpApi
from .buckets import CatalogBuckets
from .config import DeployConfig
from .data import Data
from .functions import CatalogFunctions
from .layer import Layer
from .lint import PruneRedundantDependsOn
from .migrations import Migrations
from .monitoring import Monitoring
from .names import Names
from .network import Network
from .queues import Queues
from .schedules import Schedules, schedule_expressions, stalled_alarm_minutes
from .secrets import CatalogSecrets


def runtime_database_capabilities(functions: tuple[Function, ...]) -> tuple[str, ...]:
    """Capabilities with a database function other than the migrator: each gets a database user."""
    return tuple(dict.fromkeys(f.capability for f in functions if f.database and f.trigger.kind != "deploy"))


class OpsdeckStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str | None = None,
        *,
        config: DeployConfig,
        functions: tuple[Function, ...] = catalog.FUNCTIONS,
        buckets: tuple[Bucket, ...] = catalog.BUCKETS,
    ) -> None:
        catalog.validate(functions, buckets)
        # checked before any construct is built: an unknown schedule name fails the synth at once
        expressions = schedule_expressions(functions, config.schedule_expressions)
        stalled_minutes = stalled_alarm_minutes(functions, expressions)
        env = (
            Environment(account=config.account, region=config.region)
            if config.account or config.region
            else None
        )
        super().__init__(
            scope,
            id or config.stack_name,
            stack_name=config.stack_name,
            env=env,
            description=f"opsdeck ({config.stage}): commerce operations backends from functions/catalog.py",
            termination_protection=config.is_prod,
        )
        self.config = config
        self.functions = functions
        names = Names(config.stack_name)
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]  # CloudFormation rejects Tags on it
        Tags.of(self).add("project", "opsdeck", exclude_resource_types=untaggable)
        Tags.of(self).add("stage", config.stage, exclude_resource_types=untaggable)
        Aspects.of(self).add(PruneRedundantDependsOn())  # cfn-lint W3005 (infra_cdk/lint.py)

        self.network = Network(self, "Network", config=config, functions=functions)
        self.data = Data(
            self,
            "Data",
            config=config,
            names=names,
            network=self.network,
            capabilities=runtime_database_capabilities(functions),
        )
        self.secrets = CatalogSecrets(self, "Secrets", functions=functions, config=config, names=names)
        self.buckets = CatalogBuckets(self, "Buckets", functions=functions, buckets=buckets, config=config)
        # the X-Ray SDK goes into the layer only if some function uses the Powertools Tracer
        self.layer = Layer(
            self,
            "Layer",
            config=config,
            tracing=any(f.tracer for f in functions),
            extras=[extra for f in functions for extra in f.extras],
        )
        self.code_asset = bundling.function_code(bytecode=config.bundle and config.layer_bytecode != "none")
        code = lambda_.Code.from_asset(
            str(self.code_asset.path), asset_hash=self.code_asset.key, asset_hash_type=AssetHashType.CUSTOM
        )
        self.queues = Queues(self, "Queues", functions=functions, names=names)
        self.catalog_functions = CatalogFunctions(
            self,
            "Functions",
            functions=functions,
            config=config,
            names=names,
            code=code,
            layer=self.layer.layer,
            extra_layers=self.layer.extras,
            network=self.network,
            data=self.data,
            queues=self.queues,
            secrets=self.secrets,
            buckets=self.buckets,
        )
        lambdas = self.catalog_functions.lambdas
        # triggers invoke the target: a SnapStart function's "live" alias, else the function
        targets = self.catalog_functions.targets
        self.queues.connect(targets)
        self.schedules = Schedules(
            self, "Schedules", functions=functions, names=names, lambdas=targets, expressions=expressions
        )
        self.api = HttpApi(self, "Http", functions=functions, config=config, lambdas=targets)
        self.migrations = Migrations(
            self,
            "Migrations",
            functions=functions,
            config=config,
            lambdas=lambdas,
            database_endpoint=self.data.proxy.endpoint,
            prerequisites=[self.network, self.data.proxy],
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions=functions,
            config=config,
            lambdas=lambdas,
            queues=self.queues,
            api=self.api,
            data=self.data,
            stalled_minutes=stalled_minutes,
        )
        CfnOutput(self, "DatabaseProxyEndpoint", value=self.data.proxy.endpoint)
        CfnOutput(self, "DatabaseSecretArn", value=self.data.database_secret.secret_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        for name, secret in self.secrets.secrets.items():
            CfnOutput(self, f"Secret-{name}", value=secret.secret_arn, description=f"catalog secret {name}")
