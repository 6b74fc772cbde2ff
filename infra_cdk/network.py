"""Network: a VPC with private subnets, client security groups and the way out to AWS APIs.

Subnet groups: ``functions`` (Lambda ENIs, interface endpoints) and ``data`` (RDS, RDS Proxy,
ElastiCache; isolated, never a route out). Egress is chosen by context ``egress``:

* ``nat`` (default): ``functions`` subnets route through NAT gateways (one in dev, one per AZ in
  prod). Needed when a function that uses the database or cache also calls the internet
  (SP-API, Apify, Slack).
* ``endpoints``: no NAT, ``functions`` subnets are isolated; interface endpoints for exactly the
  AWS APIs the catalog's in-VPC functions use (SQS for ``sends_to``, EventBridge for
  ``controls_schedules``, Lambda for ``invokes``, X-Ray for ``tracer``).

Secrets Manager always gets an interface endpoint: RDS Proxy (in the isolated data subnets)
must reach it, so do the secret rotation function and every database/cache function.

Only functions that declare ``database`` or ``cache`` run in the VPC; the others stay outside
(no ENI, internet and AWS APIs directly). In-VPC functions carry ``DatabaseClients`` and/or
``CacheClients``: the only security groups the proxy and the cache admit (see data.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.catalog import Function

from .config import RETENTION_DAYS, DeployConfig

HTTPS = ec2.Port.tcp(443)


def in_vpc(function: Function) -> bool:
    """Functions that reach the database or the cache run inside the VPC."""
    return function.database or function.cache


def endpoint_services(functions: Iterable[Function]) -> list[str]:
    """Interface endpoints the in-VPC functions need when there is no NAT (besides Secrets Manager)."""
    needed: set[str] = set()
    for f in functions:
        if not in_vpc(f):
            continue
        if f.sends_to:
            needed.add("sqs")
        if f.controls_schedules:
            needed.add("events")
        if f.invokes:
            needed.add("lambda")
        if f.tracer:
            needed.add("xray")
    return sorted(needed)


_SERVICES = {
    "secretsmanager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
    "xray": ec2.InterfaceVpcEndpointAwsService.XRAY,
}


class Network(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: DeployConfig, functions: tuple[Function, ...]
    ) -> None:
        super().__init__(scope, id)
        nat = config.egress == "nat"
        subnets = [
            ec2.SubnetConfiguration(
                name="functions",
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if nat else ec2.SubnetType.PRIVATE_ISOLATED,
                cidr_mask=20,
            ),
            ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
        ]
        if nat:
            subnets.insert(
                0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=config.max_azs,
            nat_gateways=max(1, config.nat_gateways) if nat else 0,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=getattr(logs.RetentionDays, RETENTION_DAYS[config.log_retention_days]),
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL if config.is_prod else ec2.FlowLogTrafficType.REJECT,
        )
        self.function_subnets = ec2.SubnetSelection(subnet_group_name="functions")
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")

        self.database_clients = ec2.SecurityGroup(
            self,
            "DatabaseClients",
            vpc=self.vpc,
            description="Functions that use the database: admitted by RDS Proxy on 5432",
            allow_all_outbound=True,
        )
        self.cache_clients = ec2.SecurityGroup(
            self,
            "CacheClients",
            vpc=self.vpc,
            description="Functions that use the cache: admitted by ElastiCache on 6379",
            allow_all_outbound=True,
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from the client security groups only",
            allow_all_outbound=False,
        )
        for client in (self.database_clients, self.cache_clients):
            self.endpoint_security_group.add_ingress_rule(client, HTTPS, "AWS APIs from functions")

        if not nat:
            offline = sorted(f.name for f in functions if in_vpc(f) and f.secrets)
            if offline:
                Annotations.of(self).add_warning_v2(
                    "opsdeck:egress",
                    f"egress=endpoints: {', '.join(offline)} run in the VPC and read third-party "
                    "credentials, but have no route to the internet (use egress=nat if they call upstreams)",
                )
        services = ["secretsmanager"] + ([] if nat else endpoint_services(functions))
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {
            service: self.vpc.add_interface_endpoint(
                f"{service}-endpoint",
                service=_SERVICES[service],
                subnets=self.function_subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
            for service in services
        }

    def security_groups_for(self, function: Function) -> list[ec2.ISecurityGroup]:
        groups: list[ec2.ISecurityGroup] = []
        if function.database:
            groups.append(self.database_clients)
        if function.cache:
            groups.append(self.cache_clients)
        return groups
