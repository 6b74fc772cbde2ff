"""Data: RDS PostgreSQL 16 behind RDS Proxy, and ElastiCache (Valkey) — private, encrypted.

* PostgreSQL: encrypted storage, automated backups, Multi-AZ and deletion protection in prod,
  logs exported to CloudWatch. The master credentials are generated into Secrets Manager
  (``<stack>/database``) and rotated every 30 days by the single-user rotation function.
* RDS Proxy in front (TLS required, ``DATABASE_SSL=verify-full``: the proxy presents an ACM
  certificate, verified with the system CA bundle; **IAM authentication required**). Functions
  pool at most one connection per container (``DB_POOL_SIZE``); the proxy multiplexes them onto
  the database.
* Database users: each capability with runtime database functions has a runtime role
  ``opsdeck_<capability>_app`` (``opsdeck.naming.database_role``; created and granted by the
  migrations). Its password lives in a secret of its own (``<stack>/database-<capability>``,
  attached to the instance, rotated every 30 days by single-user rotation), registered with the
  proxy, which logs in to PostgreSQL with it; functions authenticate to the proxy with IAM
  tokens as that user (``rds-db:connect`` on exactly it) and never see the password. The
  migrator (``Deploy`` functions) connects as the master user, also by IAM, and sets each
  runtime role's password from its secret.
* Valkey 8 replication group (the Redis protocol; redis-py talks to it unchanged): TLS required,
  encrypted at rest, AUTH token generated into Secrets Manager (``<stack>/cache-auth``); a replica
  with automatic failover in prod.
* Security groups: database ← proxy only; proxy ← ``DatabaseClients`` only; cache ←
  ``CacheClients`` only. The proxy may talk out only to the database and the Secrets Manager
  endpoint (it reads the credentials from there).
* Functions receive connection settings as environment (``database_environment``) — host,
  port, database, user and ``DATABASE_AUTH=iam``, never a password.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from opsdeck.naming import database_role

from .config import RETENTION_DAYS, DeployConfig
from .nag import suppress
from .names import Names
from .network import HTTPS, Network

#: a full engine version: a bare major ("16") is one RDS can no longer create instances with
#: (cfn-lint W3691); minor upgrades still apply automatically (auto_minor_version_upgrade)
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16_13
DATABASE_NAME = "opsdeck"
MASTER_USER = "opsdeck_admin"
DATABASE_PORT = 5432
CACHE_PORT = 6379
#: construct id of CDK's log-retention singleton function (aws-cdk-lib, aws-logs LogRetention)
LOG_RETENTION_SINGLETON = "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"
BASIC_EXECUTION_ROLE = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class Data(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeployConfig,
        names: Names,
        network: Network,
        capabilities: tuple[str, ...] = (),
    ) -> None:
        """``capabilities``: those whose functions use the database at run time (a user each)."""
        super().__init__(scope, id)
        vpc = network.vpc
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY

        # ---------------------------------------------------------- PostgreSQL
        self.database_security_group = ec2.SecurityGroup(
            self,
            "DatabaseSg",
            vpc=vpc,
            description="PostgreSQL: from RDS Proxy only",
            allow_all_outbound=False,
        )
        self.proxy_security_group = ec2.SecurityGroup(
            self,
            "ProxySg",
            vpc=vpc,
            description="RDS Proxy: from DatabaseClients only",
            allow_all_outbound=False,
        )
        master_secret = rds.DatabaseSecret(
            self, "DatabaseSecret", username=MASTER_USER, secret_name=names.secret("database")
        )
        master_secret.apply_removal_policy(removal)
        self.database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION),
            instance_type=ec2.InstanceType(config.db_instance_class),
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.database_security_group],
            port=DATABASE_PORT,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_secret(master_secret),
            multi_az=config.db_multi_az,
            allocated_storage=config.db_allocated_storage_gb,
            max_allocated_storage=config.db_max_allocated_storage_gb,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            backup_retention=Duration.days(config.db_backup_retention_days),
            delete_automated_backups=not config.retain_data,
            deletion_protection=config.deletion_protection,
            removal_policy=removal,
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
            enable_performance_insights=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            cloudwatch_logs_retention=getattr(logs.RetentionDays, RETENTION_DAYS[config.log_retention_days]),
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
        )
        assert self.database.secret is not None
        # the instance's view of the secret: attached, so it also holds host, port and dbname
        self.database_secret = self.database.secret
        self.rotation_security_group = ec2.SecurityGroup(
            self, "RotationSg", vpc=vpc, description="Secret rotation function", allow_all_outbound=True
        )
        self.database.connections.allow_default_port_from(self.rotation_security_group, "secret rotation")
        network.endpoint_security_group.add_ingress_rule(
            self.rotation_security_group, HTTPS, "secret rotation"
        )
        self.database.add_rotation_single_user(
            automatically_after=Duration.days(30),
            vpc_subnets=network.function_subnets,
            security_group=self.rotation_security_group,
            endpoint=network.endpoints["secretsmanager"],
        )

        # one secret per capability runtime role: the proxy's credentials for that user
        self.role_secrets: dict[str, secretsmanager.ISecret] = {}
        for capability in capabilities:
            user = database_role(DATABASE_NAME, capability, "runtime")
            role_secret = rds.DatabaseSecret(
                self,
                f"RoleSecret-{capability}",
                username=user,
                secret_name=names.secret(f"database-{capability}"),
            )
            role_secret.apply_removal_policy(removal)
            attached = role_secret.attach(self.database)  # host/port/dbname for the rotation function
            secretsmanager.SecretRotation(
                self,
                f"RoleSecretRotation-{capability}",
                application=secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
                secret=attached,
                target=self.database,
                vpc=vpc,
                vpc_subnets=network.function_subnets,
                security_group=self.rotation_security_group,
                endpoint=network.endpoints["secretsmanager"],
                automatically_after=Duration.days(30),
                # the role exists only once the first deployment's migrations ran
                rotate_immediately_on_update=False,
            )
            self.role_secrets[capability] = attached

        self.proxy = self.database.add_proxy(
            "Proxy",
            secrets=[self.database_secret, *self.role_secrets.values()],
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.proxy_security_group],
            require_tls=True,
            iam_auth=True,
            # leave room for migrations, rotation and an operator's session
            max_connections_percent=90,
            idle_client_timeout=Duration.minutes(15),
        )
        self.database.connections.allow_default_port_from(self.proxy_security_group, "RDS Proxy")
        self.proxy_security_group.add_egress_rule(
            self.database_security_group, ec2.Port.tcp(DATABASE_PORT), "to PostgreSQL"
        )
        self.proxy_security_group.add_egress_rule(
            network.endpoint_security_group, HTTPS, "to Secrets Manager"
        )
        network.endpoint_security_group.add_ingress_rule(
            self.proxy_security_group, HTTPS, "RDS Proxy reads its secret"
        )
        self.proxy_security_group.add_ingress_rule(
            network.database_clients, ec2.Port.tcp(DATABASE_PORT), "functions that use the database"
        )

        # ------------------------------------------------------------- Valkey
        self.cache_security_group = ec2.SecurityGroup(
            self, "CacheSg", vpc=vpc, description="Valkey: from CacheClients only", allow_all_outbound=False
        )
        self.cache_security_group.add_ingress_rule(
            network.cache_clients, ec2.Port.tcp(CACHE_PORT), "functions that use the cache"
        )
        self.cache_auth_secret = secretsmanager.Secret(
            self,
            "CacheAuth",
            secret_name=names.secret("cache-auth"),
            description="AUTH token of the opsdeck cache (REDIS_AUTH_SECRET_ID)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, include_space=False, password_length=64
            ),
            removal_policy=removal,
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnets",
            description="opsdeck cache: isolated data subnets",
            subnet_ids=vpc.select_subnets(subnet_group_name="data").subnet_ids,
        )
        replicas = config.cache_replicas
        self.cache = elasticache.CfnReplicationGroup(
            self,
            "Cache",
            replication_group_description=f"opsdeck cache ({config.stage})",
            engine="valkey",
            engine_version="8.0",
            cache_node_type=config.cache_node_type,
            num_cache_clusters=1 + replicas,
            automatic_failover_enabled=replicas > 0,
            multi_az_enabled=replicas > 0,
            port=CACHE_PORT,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[self.cache_security_group.security_group_id],
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            auth_token=self.cache_auth_secret.secret_value.unsafe_unwrap(),  # a {{resolve:…}} reference
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=7 if config.retain_data else 0,
        )
        self.cache.apply_removal_policy(
            RemovalPolicy.SNAPSHOT if config.retain_data else RemovalPolicy.DESTROY
        )

        # --------------------------------------------------------- cdk-nag
        suppress(
            self.database,
            "RDS11",
            "Clients reach PostgreSQL only through RDS Proxy, whose port is fixed at 5432; the instance "
            "keeps 5432 too because functions take the port from the database secret, and admits only "
            "the proxy and rotation security groups",
        )
        if not config.db_multi_az:
            suppress(
                self.database, "RDS3", "Single-AZ in dev/per-developer stacks to save cost; prod is Multi-AZ"
            )
        if not config.deletion_protection:
            suppress(
                self.database,
                "RDS10",
                "Deletion protection is off in dev/per-developer stacks so they can be torn down; on in prod",
            )
        suppress(
            self.cache_auth_secret,
            "SMG4",
            "The ElastiCache AUTH token is rotated by redeploying with a new value (AUTH ROTATE "
            "strategy); Secrets Manager rotation applies to RBAC users, not AUTH tokens",
        )
        if replicas == 0:
            suppress(
                self.cache, "AEC4", "No replica in dev/per-developer stacks to save cost; prod runs a replica"
            )
        log_retention = Stack.of(self).node.try_find_child(LOG_RETENTION_SINGLETON)
        if log_retention is not None:
            reason = (
                "CDK's log-retention function (sets the retention of the RDS log exports) uses "
                "AWSLambdaBasicExecutionRole and logs:PutRetentionPolicy on *; it runs only during deploys"
            )
            suppress(log_retention, "IAM4", reason, applies_to=[BASIC_EXECUTION_ROLE])
            suppress(log_retention, "IAM5", reason, applies_to=["Resource::*"])

    # ------------------------------------------------------------------ environment

    @property
    def redis_url(self) -> str:
        return (
            f"rediss://{self.cache.attr_primary_end_point_address}:{self.cache.attr_primary_end_point_port}/0"
        )

    @staticmethod
    def database_user(capability: str, *, migrator: bool = False) -> str:
        """The user a function connects as: the master for the migrator, else its capability's role."""
        return MASTER_USER if migrator else database_role(DATABASE_NAME, capability, "runtime")

    def database_environment(self, capability: str, *, migrator: bool = False) -> dict[str, str]:
        env = {
            "DATABASE_HOST": self.proxy.endpoint,
            "DATABASE_PORT": str(DATABASE_PORT),
            "DATABASE_NAME": DATABASE_NAME,
            "DATABASE_USER": self.database_user(capability, migrator=migrator),
            "DATABASE_AUTH": "iam",
            "DATABASE_SSL": "verify-full",
        }
        if migrator:  # it sets each runtime role's password from the role's secret
            env["DATABASE_ROLE_SECRET_IDS"] = Stack.of(self).to_json_string(
                {c: s.secret_arn for c, s in self.role_secrets.items()}
            )
        return env

    def cache_environment(self) -> dict[str, str]:
        return {"REDIS_URL": self.redis_url, "REDIS_AUTH_SECRET_ID": self.cache_auth_secret.secret_arn}

    def cache_node_id(self, index: int = 1) -> str:
        """Node ``<replication group>-00N`` (CloudWatch's CacheClusterId dimension)."""
        return f"{self.cache.ref}-{index:03d}"
