"""Functions: one Lambda per catalog entry, made by one factory with shared defaults.

Shared defaults: python3.12 on arm64 (the layer is built for it), the common layer, the one
function code asset, active X-Ray tracing, JSON logs into ``/aws/lambda/<stack>-<name>`` with
the stage's retention, a role of its own. Per entry: memory, timeout, reserved concurrency,
VPC placement (only ``database``/``cache`` functions; see network.py) and:

**Environment** (contract C) = ``Function.runtime_environment(stage)`` + ``POWERTOOLS_LOG_LEVEL``
+ ``Function.wiring_environment()`` resolved to this stack's resources (queue URLs, secret ARNs,
rule names, function names) + platform connection settings: ``JWT_*`` for every function,
``DATABASE_*`` for ``database`` functions, ``REDIS_*`` for ``cache`` functions. A catalog
``environment`` entry may not redefine any of those names.

**IAM**, generated from what the entry declares, nothing else: write its own log group;
``rds-db:connect`` to the proxy as its capability's database user (``database``; the migrator as
the master user, plus reading the runtime roles' secrets to set their passwords); read the cache
AUTH secret (``cache``) and each declared secret;
``sqs:SendMessage`` on each ``sends_to`` queue; ``events:Enable/Disable/DescribeRule`` on each
``controls_schedules`` rule; ``lambda:InvokeFunction`` on each ``invokes`` function;
``s3:GetObject``/``s3:PutObject`` on the objects of each ``buckets`` bucket. Consumers get
receive/delete on their own queue from the event source mapping. The only ``*`` resources are
the ENI and X-Ray actions, which support no resource-level permissions.

``operates_stack`` (the ops console, ``ops-api``) adds what operating *this stack* takes, named
resource by resource: read every catalog queue and DLQ; receive/delete/move messages of the
DLQs (peek, replay) and send to the source queues (replay's destination); describe, enable and
disable every catalog rule; invoke the scheduled functions (fire now); Logs Insights
``StartQuery`` on the catalog's log groups. ``cloudwatch:GetMetricData``,
``logs:GetQueryResults`` and ``logs:StopQuery`` support no resource-level permissions (``*``).
It gets ``OPSDECK_RESOURCE_PREFIX=<stack>-`` to derive the physical names.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack, Tags, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.catalog import Function

from .buckets import OBJECT_ACTIONS, CatalogBuckets
from .config import RETENTION_DAYS, DeployConfig
from .data import Data
from .layer import ARCHITECTURE, RUNTIME
from .nag import suppress
from .names import Names
from .network import Network, in_vpc
from .queues import Queues
from .secrets import CatalogSecrets

ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
RULE_ACTIONS = ("events:EnableRule", "events:DisableRule", "events:DescribeRule")
ALARM_ACTIONS = ("cloudwatch:EnableAlarmActions", "cloudwatch:DisableAlarmActions")


def _stalled_alarm(functions: tuple[Function, ...], schedule: str) -> bool:
    """Whether catalog schedule ``schedule`` has a stalled alarm (``Schedule.stalled_after_minutes``)."""
    from functions.catalog import Schedule, schedule_name

    return any(
        isinstance(g.trigger, Schedule) and schedule_name(g) == schedule and g.trigger.stalled_after_minutes
        for g in functions
    )


#: ``operates_stack``: on every catalog queue and DLQ / on the DLQs / without resource-level support
OPERATOR_QUEUE_ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes")
OPERATOR_DLQ_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:ListDeadLetterSourceQueues",
)
OPERATOR_UNSCOPED_ACTIONS = ("cloudwatch:GetMetricData", "logs:GetQueryResults", "logs:StopQuery")
ENVIRONMENT_LIMIT = 4096
#: the alias SnapStart functions' triggers invoke
ALIAS = "live"
_LAMBDA_LOG_LEVEL = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}


class CatalogEnvironmentError(ValueError):
    """A catalog entry's ``environment`` collides with a name the platform sets."""


def jwt_environment(config: DeployConfig) -> dict[str, str]:
    return {
        "JWT_ISSUER": config.jwt_issuer,
        "JWT_AUDIENCE": config.jwt_audience,
        "JWT_JWKS_URL": config.jwt_jwks_url,
        "JWT_ALGORITHMS": config.jwt_algorithms,
    }


class CatalogFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: tuple[Function, ...],
        config: DeployConfig,
        names: Names,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        extra_layers: dict[str, lambda_.ILayerVersion] | None = None,
        network: Network,
        data: Data,
        queues: Queues,
        secrets: CatalogSecrets,
        buckets: CatalogBuckets,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.names = names
        self.code = code
        self.layer = layer
        self.extra_layers = extra_layers or {}
        self.network = network
        self.data = data
        self.queues = queues
        self.secrets = secrets
        self.buckets = buckets
        self.catalog = {f.name: f for f in functions}
        self.lambdas: dict[str, lambda_.Function] = {}
        #: what triggers invoke: the ``live`` alias of a SnapStart function, else the function
        self.targets: dict[str, lambda_.IFunction] = {}
        self.aliases: dict[str, lambda_.Alias] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for f in functions:
            self.lambdas[f.name] = self._create(f)
            self.targets[f.name] = self.lambdas[f.name]
            if f.snap_start_enabled(config.profile):
                # SnapStart applies to published versions only: publish one per code/config
                # change and point the alias (and through it every trigger) at it
                alias = lambda_.Alias(
                    self, f"{f.name}-{ALIAS}", alias_name=ALIAS, version=self.lambdas[f.name].current_version
                )
                self.aliases[f.name] = alias
                self.targets[f.name] = alias

    # ------------------------------------------------------------------ environment

    def wiring(self, f: Function) -> dict[str, str]:
        """``wiring_environment`` with each (kind, logical name) resolved to this stack's resource."""
        resolve = {
            "queue": lambda name: self.queues.queues[name].queue_url,
            "secret": lambda name: self.secrets.secrets[name].secret_arn,
            "schedule": self.names.rule,
            "function": self.names.function,
            "secret_prefix": lambda prefix: self.names.secret(prefix) + "/",
            "bucket": lambda name: self.buckets.buckets[name].bucket_name,
        }
        return {var: resolve[kind](name) for var, (kind, name) in f.wiring_environment().items()}

    def platform(self, f: Function) -> dict[str, str]:
        env = jwt_environment(self.config)
        if f.database:
            env.update(self.data.database_environment(f.capability, migrator=f.trigger.kind == "deploy"))
        if f.cache:
            env.update(self.data.cache_environment())
        return env

    def environment(self, f: Function) -> dict[str, str]:
        runtime = f.runtime_environment(self.config.stage)
        added = {"POWERTOOLS_LOG_LEVEL": self.config.log_level, **self.wiring(f), **self.platform(f)}
        if f.operates_stack:
            added["OPSDECK_RESOURCE_PREFIX"] = f"{self.names.stack}-"
        clash = sorted(set(f.environment) & set(added))
        if clash:
            raise CatalogEnvironmentError(
                f"function {f.name!r}: environment redefines {', '.join(clash)}, which the platform sets"
            )
        env = {**runtime, **added}
        # Lambda refuses more than 4 KB of environment; resolved ARNs/URLs count ~200 bytes here
        size = sum(len(k) + (200 if Token.is_unresolved(v) else len(v)) for k, v in env.items())
        if size > ENVIRONMENT_LIMIT:
            raise CatalogEnvironmentError(
                f"function {f.name!r}: ~{size} bytes of environment exceed Lambda's 4 KB limit"
            )
        return env

    # ------------------------------------------------------------------ operator

    def _operator_policy(self, role: iam.Role) -> None:
        """What the ops console needs on this stack's resources, and nothing of any other stack."""
        stack = Stack.of(self)
        sources = list(self.queues.queues.values())
        dlqs = list(self.queues.dlqs.values())
        schedules = [f for f in self.catalog.values() if f.trigger.kind == "schedule"]
        statements = [
            (OPERATOR_QUEUE_ACTIONS, [q.queue_arn for q in sources + dlqs]),
            (OPERATOR_DLQ_ACTIONS, [q.queue_arn for q in dlqs]),
            (("sqs:SendMessage",), [q.queue_arn for q in sources]),
            (
                RULE_ACTIONS,
                [
                    stack.format_arn(service="events", resource="rule", resource_name=self.names.rule(name))
                    for name in sorted({f.trigger.name or f.name for f in schedules})
                ],
            ),
            (
                ("lambda:InvokeFunction",),
                [
                    stack.format_arn(
                        service="lambda",
                        resource="function",
                        resource_name=self.names.function(f),
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for f in schedules
                ],
            ),
            (
                ("logs:StartQuery",),
                [
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=self.names.log_group(f) + suffix,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for f in self.catalog.values()
                    for suffix in ("", ":*")
                ],
            ),
            (OPERATOR_UNSCOPED_ACTIONS, ["*"]),
        ]
        for actions, resources in statements:
            if resources:
                role.add_to_policy(iam.PolicyStatement(actions=list(actions), resources=resources))

    # ------------------------------------------------------------------ factory

    def _create(self, f: Function) -> lambda_.Function:
        stack = Stack.of(self)
        log_group = logs.LogGroup(
            self,
            f"{f.name}-logs",
            log_group_name=self.names.log_group(f),
            retention=getattr(logs.RetentionDays, RETENTION_DAYS[self.config.log_retention_days]),
            removal_policy=RemovalPolicy.RETAIN if self.config.retain_data else RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{f.name}-role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"opsdeck {f.name}: least privilege from its catalog entry",
        )
        log_group.grant_write(role)
        vpc = in_vpc(f)
        if vpc:
            role.add_to_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
        if f.database:
            # IAM authentication to RDS Proxy as exactly its capability's user (the migrator: master)
            migrator = f.trigger.kind == "deploy"
            self.data.proxy.grant_connect(role, self.data.database_user(f.capability, migrator=migrator))
            if migrator:
                for role_secret in self.data.role_secrets.values():
                    role_secret.grant_read(role)
        if f.cache:
            self.data.cache_auth_secret.grant_read(role)
        for s in f.secrets:
            self.secrets.secrets[s].grant_read(role)
        if f.secret_prefixes:
            # secrets users register by reference: only those under <stack>/<prefix>/
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=[
                        stack.format_arn(
                            service="secretsmanager",
                            resource="secret",
                            resource_name=self.names.secret(p) + "/*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for p in f.secret_prefixes
                    ],
                )
            )
        for q in f.sends_to:
            self.queues.queues[q].grant_send_messages(role)
        if f.controls_schedules:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(RULE_ACTIONS),
                    resources=[
                        stack.format_arn(service="events", resource="rule", resource_name=self.names.rule(s))
                        for s in f.controls_schedules
                    ],
                )
            )
            stalled = [s for s in f.controls_schedules if _stalled_alarm(tuple(self.catalog.values()), s)]
            if stalled:  # the rule's stalled alarm follows the rule (see infra_cdk/monitoring.py)
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=list(ALARM_ACTIONS),
                        resources=[
                            stack.format_arn(
                                service="cloudwatch",
                                resource="alarm",
                                resource_name=self.names.rule(s) + "-stalled",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                            for s in stalled
                        ],
                    )
                )
        if f.buckets:
            objects = [self.buckets.buckets[b].arn_for_objects("*") for b in f.buckets]
            role.add_to_policy(iam.PolicyStatement(actions=list(OBJECT_ACTIONS), resources=objects))
            suppress(
                role,
                "IAM5",
                "presigned uploads and exports choose object keys at run time: get/put on the objects "
                "of the function's own catalog buckets only (no list, no delete)",
                applies_to=[
                    f"Resource::<{Stack.of(self).get_logical_id(self.buckets.buckets[b].node.default_child)}.Arn>/*"
                    for b in f.buckets
                ],
            )
        if f.invokes:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=[
                        stack.format_arn(
                            service="lambda",
                            resource="function",
                            resource_name=self.names.function(other),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for other in f.invokes
                    ],
                )
            )
        if f.operates_stack:
            self._operator_policy(role)

        fn = lambda_.Function(
            self,
            f.name,
            function_name=self.names.function(f),
            description=(f.description or f"opsdeck {f.name}")[:256],
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f.handler,
            code=self.code,
            layers=[self.layer, *(self.extra_layers[extra] for extra in f.extras)],
            memory_size=f.memory_mb,
            timeout=Duration.seconds(f.timeout_s),
            reserved_concurrent_executions=f.reserved_concurrency,
            environment=self.environment(f),
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=getattr(
                lambda_.ApplicationLogLevel, _LAMBDA_LOG_LEVEL[self.config.log_level]
            ),
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
            if f.snap_start_enabled(self.config.profile)
            else None,
            vpc=self.network.vpc if vpc else None,
            vpc_subnets=self.network.function_subnets if vpc else None,
            security_groups=self.network.security_groups_for(f) if vpc else None,
        )
        Tags.of(fn).add("opsdeck:function", f.name)
        if f.operates_stack:
            suppress(
                role,
                "IAM5",
                "the ops console reads CloudWatch metrics (GetMetricData) and Logs Insights results "
                "(GetQueryResults/StopQuery), which support no resource-level permissions; StartQuery is "
                "limited to this stack's log groups (log-group:NAME:* is the form IAM matches)",
                applies_to=[
                    "Resource::*",
                    *(
                        f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                        f"{self.names.log_group(other)}:*"
                        for other in self.catalog
                    ),
                ],
            )
        Tags.of(fn).add("opsdeck:capability", f.capability)
        suppress(
            role,
            "IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords and the Lambda VPC ENI actions support no "
            "resource-level permissions",
            applies_to=["Resource::*"],
        )
        for p in f.secret_prefixes:
            suppress(
                role,
                "IAM5",
                "secrets registered by users at run time (by reference) live under one name prefix; "
                "the policy names exactly that prefix of this stack",
                applies_to=[
                    "Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:"
                    f"{self.names.secret(p)}/*"
                ],
            )
        suppress(
            fn,
            "L1",
            "python3.12 is opsdeck's runtime: the layer's wheels and bytecode are built for it and the "
            "test suite runs on it; moving to a newer runtime is a deliberate upgrade",
        )
        return fn
