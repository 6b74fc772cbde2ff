"""Network and data: private subnets, security groups admitting only their clients, encrypted
PostgreSQL 16 behind RDS Proxy with rotation, TLS + AUTH cache; prod-safe settings in prod."""

from __future__ import annotations

import json
import re

from tests.infra.conftest import Synth


def _group(synth: Synth, description_prefix: str) -> str:
    (found,) = [
        k
        for k, v in synth.of_type("AWS::EC2::SecurityGroup").items()
        if v["Properties"]["GroupDescription"].startswith(description_prefix)
    ]
    return found


def _ingress(synth: Synth, group: str) -> set[tuple[str, int]]:
    """(source security group, port) pairs; the database's port is its own Endpoint.Port."""
    (instance,) = synth.of_type("AWS::RDS::DBInstance")
    rules = set()
    for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        if props["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}:
            port = props["FromPort"]
            if port == {"Fn::GetAtt": [instance, "Endpoint.Port"]}:
                port = 5432  # the instance port (data.py sets DATABASE_PORT = 5432)
            assert props["ToPort"] == props["FromPort"]
            rules.add((props["SourceSecurityGroupId"]["Fn::GetAtt"][0], port))
    for inline in synth.resources[group]["Properties"].get("SecurityGroupIngress", []):
        rules.add((json.dumps(inline), inline.get("FromPort")))
    return rules


def test_security_groups_admit_only_their_clients(synth: Synth):
    database = _group(synth, "PostgreSQL")
    proxy = _group(synth, "RDS Proxy")
    cache = _group(synth, "Valkey")
    rotation = _group(synth, "Secret rotation")
    database_clients = _group(synth, "Functions that use the database")
    cache_clients = _group(synth, "Functions that use the cache")
    assert _ingress(synth, database) == {(proxy, 5432), (rotation, 5432)}
    assert _ingress(synth, proxy) == {(database_clients, 5432)}
    assert _ingress(synth, cache) == {(cache_clients, 6379)}
    for group in (database, proxy, cache):
        assert "0.0.0.0/0" not in json.dumps(synth.resources[group])


def test_data_lives_in_isolated_subnets(synth: Synth):
    (instance,) = synth.of_type("AWS::RDS::DBInstance").values()
    (subnet_group,) = synth.of_type("AWS::RDS::DBSubnetGroup").values()
    (proxy,) = synth.of_type("AWS::RDS::DBProxy").values()
    (cache_subnets,) = synth.of_type("AWS::ElastiCache::SubnetGroup").values()
    for subnets in (
        subnet_group["Properties"]["SubnetIds"],
        proxy["Properties"]["VpcSubnetIds"],
        cache_subnets["Properties"]["SubnetIds"],
    ):
        for subnet in subnets:
            assert "dataSubnet" in subnet["Ref"]
            assert synth.resources[subnet["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is False
    assert instance["Properties"]["PubliclyAccessible"] is False
    # isolated: the data subnets' route tables have no route out of the VPC
    for route in synth.of_type("AWS::EC2::Route").values():
        assert "dataSubnet" not in route["Properties"]["RouteTableId"]["Ref"]


def test_postgres_16_encrypted_behind_a_tls_proxy_with_rotation(synth: Synth):
    (instance,) = synth.of_type("AWS::RDS::DBInstance").values()
    props = instance["Properties"]
    assert props["Engine"] == "postgres" and props["EngineVersion"].startswith("16")
    assert props["StorageEncrypted"] is True
    assert str(props["Port"]) == "5432"
    assert props["BackupRetentionPeriod"] == synth.config.db_backup_retention_days >= 1
    assert "MasterUserPassword" in props and "{{resolve:secretsmanager:" in json.dumps(
        props["MasterUserPassword"]
    )
    (proxy,) = synth.of_type("AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    rotations = synth.of_type("AWS::SecretsManager::RotationSchedule").values()
    # the master secret and one per capability runtime role (test_database_auth.py)
    from infra_cdk.stack import runtime_database_capabilities

    assert len(rotations) == 1 + len(runtime_database_capabilities(synth.functions))
    for rotation in rotations:
        assert rotation["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"


def test_cache_requires_tls_and_auth(synth: Synth):
    (cache,) = synth.of_type("AWS::ElastiCache::ReplicationGroup").values()
    props = cache["Properties"]
    assert props["TransitEncryptionEnabled"] is True and props["TransitEncryptionMode"] == "required"
    assert props["AtRestEncryptionEnabled"] is True
    assert json.dumps(props["AuthToken"]).startswith('{"Fn::Join": ["", ["{{resolve:secretsmanager:')


def test_prod_is_safe_and_dev_is_disposable(synthetic: Synth, real: Synth):
    (prod_db,) = synthetic.of_type("AWS::RDS::DBInstance").values()
    (dev_db,) = real.of_type("AWS::RDS::DBInstance").values()
    assert prod_db["Properties"]["DeletionProtection"] is True and prod_db["Properties"]["MultiAZ"] is True
    assert prod_db["DeletionPolicy"] == "Retain"
    assert dev_db["Properties"].get("DeletionProtection") is False and dev_db["DeletionPolicy"] == "Delete"
    (prod_cache,) = synthetic.of_type("AWS::ElastiCache::ReplicationGroup").values()
    assert (
        prod_cache["Properties"]["MultiAZEnabled"] is True
        and prod_cache["Properties"]["NumCacheClusters"] == 2
    )
    assert prod_cache["DeletionPolicy"] == "Snapshot"
    assert synthetic.stack.termination_protection is True
    assert real.stack.termination_protection is False
    for secret in synthetic.of_type("AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Retain"
    for secret in real.of_type("AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Delete"
    for log_group in synthetic.of_type("AWS::Logs::LogGroup").values():
        if "LogGroupName" in log_group["Properties"]:
            assert log_group["DeletionPolicy"] == "Retain"


def test_egress_by_context(synthetic: Synth, real: Synth):
    # dev default: NAT; the synthetic prod stack: interface endpoints, no NAT
    assert len(real.of_type("AWS::EC2::NatGateway")) == 1
    assert synthetic.of_type("AWS::EC2::NatGateway") == {}
    assert synthetic.of_type("AWS::EC2::InternetGateway") == {}

    def services(synth: Synth) -> set[str]:
        return {
            re.search(r"\.([a-z]+)\"\]\]\}$", json.dumps(e["Properties"]["ServiceName"]))[1]
            for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
        }

    assert services(real) == {"secretsmanager"}
    # what the synthetic catalog's in-VPC functions use: sends_to, controls_schedules, invokes, tracer
    assert services(synthetic) == {"secretsmanager", "sqs", "events", "lambda", "xray"}
    for endpoint in synthetic.of_type("AWS::EC2::VPCEndpoint").values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_vpc_flow_logs(synth: Synth):
    (flow_log,) = synth.of_type("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == ("ALL" if synth.config.is_prod else "REJECT")


def test_endpoints_egress_warns_about_functions_that_call_upstreams(synthetic: Synth, real: Synth):
    from aws_cdk.assertions import Annotations, Match

    Annotations.from_stack(synthetic.stack).has_warning(
        "*", Match.string_like_regexp("egress=endpoints: marketplace-sync run in the VPC")
    )
    Annotations.from_stack(real.stack).has_no_warning("*", Match.string_like_regexp("egress=endpoints"))
