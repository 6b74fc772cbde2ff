"""Least privilege: each function's role allows exactly what its catalog entry declares."""

from __future__ import annotations

import json
from collections import defaultdict

from functions.catalog import Queue
from infra_cdk.buckets import OBJECT_ACTIONS
from infra_cdk.functions import (
    ALARM_ACTIONS,
    ENI_ACTIONS,
    OPERATOR_DLQ_ACTIONS,
    OPERATOR_QUEUE_ACTIONS,
    OPERATOR_UNSCOPED_ACTIONS,
    RULE_ACTIONS,
    _stalled_alarm,
)
from infra_cdk.network import in_vpc
from tests.infra.conftest import IMPORTED_SECRET_ARN, Synth

LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SECRET_ACTIONS = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
SEND_ACTIONS = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
CONSUME_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}


def _listify(value):
    return value if isinstance(value, list) else [value]


def permissions(synth: Synth, function: str) -> dict[str, set[str]]:
    """action → JSON of every resource the function's role may apply it to."""
    role_id = synth.lambda_props(function)["Role"]["Fn::GetAtt"][0]
    granted: dict[str, set[str]] = defaultdict(set)
    # CDK moves statements past an inline policy's size limit into an attached "OverflowPolicy"
    # (AWS::IAM::ManagedPolicy naming the role): what the role may do is the union of both
    policies = [
        *synth.of_type("AWS::IAM::Policy").values(),
        *synth.of_type("AWS::IAM::ManagedPolicy").values(),
    ]
    for policy in policies:
        if {"Ref": role_id} not in policy["Properties"].get("Roles", []):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in _listify(statement["Action"]):
                for resource in _listify(statement["Resource"]):
                    granted[action].add(json.dumps(resource, sort_keys=True))
    role = synth.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, f"{function}: no AWS managed policies"
    assert "Policies" not in role
    return granted


def role_secret_attachments(synth: Synth) -> dict[str, str]:
    """capability → logical id of its runtime role's secret (as attached to the instance)."""
    prefix = synth.name("secret", "database-")
    found = {}
    for k, v in synth.of_type("AWS::SecretsManager::SecretTargetAttachment").items():
        name = synth.resources[v["Properties"]["SecretId"]["Ref"]]["Properties"]["Name"]
        if name.startswith(prefix):
            found[name[len(prefix) :]] = k
    return found


def _secret_ref(synth: Synth, logical_name: str) -> str:
    if logical_name in synth.config.secret_arns:
        return json.dumps(IMPORTED_SECRET_ARN)
    (secret_id,) = [
        k
        for k, v in synth.of_type("AWS::SecretsManager::Secret").items()
        if v["Properties"].get("Name") == synth.name("secret", logical_name)
    ]
    return json.dumps({"Ref": secret_id})


def _queue_arn(synth: Synth, queue: Queue) -> str:
    return json.dumps({"Fn::GetAtt": [synth.queue_id(synth.name("queue", queue)), "Arn"]}, sort_keys=True)


def _dlq_arn(synth: Synth, queue: Queue) -> str:
    return json.dumps({"Fn::GetAtt": [synth.queue_id(synth.name("dlq", queue)), "Arn"]}, sort_keys=True)


def check_operator(synth: Synth, f, granted: dict[str, set[str]]) -> set[str]:
    """``operates_stack``: this stack's queues, DLQs, rules, scheduled functions, log groups only."""
    queues = [fn.trigger for fn in synth.functions if isinstance(fn.trigger, Queue)]
    sources = {_queue_arn(synth, q) for q in queues}
    dlqs = {_dlq_arn(synth, q) for q in queues}
    for action in OPERATOR_QUEUE_ACTIONS:
        assert granted[action] >= sources | dlqs, action
    for action in OPERATOR_DLQ_ACTIONS:
        assert granted[action] == dlqs | (
            {_queue_arn(synth, f.trigger)} if isinstance(f.trigger, Queue) else set()
        )
    scheduled = [fn for fn in synth.functions if fn.trigger.kind == "schedule"]
    for action in RULE_ACTIONS:
        rules = granted[action]
        assert len(rules) == len({fn.trigger.name or fn.name for fn in scheduled})
        assert all(f":rule/{synth.config.stack_name}-" in r for r in rules)
    targets = granted["lambda:InvokeFunction"]
    for fn in scheduled:
        assert any(f':function:{synth.name("function", fn.name)}"' in t for t in targets), fn.name
    queries = granted["logs:StartQuery"]
    assert len(queries) == 2 * len(synth.functions)
    assert all(f":log-group:/aws/lambda/{synth.config.stack_name}-" in q for q in queries)
    for action in OPERATOR_UNSCOPED_ACTIONS:
        assert granted[action] == {'"*"'}
    env = synth.lambda_props(f.name)["Environment"]["Variables"]
    assert env["OPSDECK_RESOURCE_PREFIX"] == synth.config.stack_name + "-"
    return {
        *OPERATOR_QUEUE_ACTIONS,
        *OPERATOR_DLQ_ACTIONS,
        *RULE_ACTIONS,
        *OPERATOR_UNSCOPED_ACTIONS,
        "sqs:SendMessage",
        "lambda:InvokeFunction",
        "logs:StartQuery",
    }


def _bucket_objects(synth: Synth, bucket: str) -> str:
    """JSON of ``<bucket ARN>/*`` for catalog bucket ``bucket``."""
    (bucket_id,) = [
        k
        for k, v in synth.of_type("AWS::S3::Bucket").items()
        if k.startswith(f"Buckets{bucket.replace('-', '')}")
    ]
    arn = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]}
    return json.dumps(arn, sort_keys=True)


def test_each_role_grants_exactly_what_the_catalog_declares(synth: Synth):
    queues = {f.trigger.name: f.trigger for f in synth.functions if isinstance(f.trigger, Queue)}
    role_secrets = {json.dumps({"Ref": k}) for k in role_secret_attachments(synth).values()}
    (cache_secret,) = [
        json.dumps({"Ref": k})
        for k, v in synth.of_type("AWS::SecretsManager::Secret").items()
        if v["Properties"].get("Name") == synth.name("secret", "cache-auth")
    ]
    for f in synth.functions:
        granted = permissions(synth, f.name)
        allowed = set(LOG_ACTIONS | XRAY_ACTIONS)

        secrets = {_secret_ref(synth, s) for s in f.secrets}
        if f.database:
            allowed.add("rds-db:connect")  # exactly which user: test_database_auth.py
            if f.trigger.kind == "deploy":
                secrets |= role_secrets  # the migrator sets the runtime roles' passwords
        if f.cache:
            secrets.add(cache_secret)
        for prefix in f.secret_prefixes:  # secrets registered at run time: only <stack>/<prefix>/*
            secrets.add(
                json.dumps(
                    {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":secretsmanager:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                f":secret:{synth.name('secret', prefix)}/*",
                            ],
                        ]
                    },
                    sort_keys=True,
                )
            )
        if secrets:
            allowed |= SECRET_ACTIONS
            assert granted["secretsmanager:GetSecretValue"] == secrets, f.name

        if f.operates_stack:
            allowed |= check_operator(synth, f, granted)
        sends = {_queue_arn(synth, queues[q]) for q in f.sends_to}
        if f.operates_stack:  # replay's destination: every source queue
            sends |= {_queue_arn(synth, q) for q in queues.values()}
        consumes = {_queue_arn(synth, f.trigger)} if isinstance(f.trigger, Queue) else set()
        if sends:
            allowed |= SEND_ACTIONS
        if consumes:
            allowed |= CONSUME_ACTIONS
        assert granted.get("sqs:SendMessage", set()) == sends, f.name
        if not f.operates_stack:
            assert granted.get("sqs:ReceiveMessage", set()) == consumes, f.name
            assert granted.get("sqs:DeleteMessage", set()) == consumes, f.name

        if f.controls_schedules and not f.operates_stack:
            allowed |= set(RULE_ACTIONS)
            for action in RULE_ACTIONS:
                rules = granted[action]
                assert len(rules) == len(f.controls_schedules)
                for schedule in f.controls_schedules:
                    assert any(f':rule/{synth.name("rule", schedule)}"' in r for r in rules), (
                        f.name,
                        schedule,
                    )
            stalled = [s for s in f.controls_schedules if _stalled_alarm(synth.functions, s)]
            if stalled:
                allowed |= set(ALARM_ACTIONS)
                for action in ALARM_ACTIONS:
                    alarms = granted[action]
                    assert len(alarms) == len(stalled), (f.name, alarms)
                    for schedule in stalled:
                        assert any(f':alarm:{synth.name("rule", schedule)}-stalled"' in a for a in alarms)
        if f.invokes and not f.operates_stack:
            allowed.add("lambda:InvokeFunction")
            targets = granted["lambda:InvokeFunction"]
            assert len(targets) == len(f.invokes)
            for other in f.invokes:
                assert any(f':function:{synth.name("function", other)}"' in t for t in targets), (
                    f.name,
                    other,
                )
        objects = {_bucket_objects(synth, b) for b in f.buckets}
        if objects:
            allowed |= set(OBJECT_ACTIONS)
        for action in OBJECT_ACTIONS:
            assert granted.get(action, set()) == objects, (f.name, action)
        if in_vpc(f):
            allowed |= set(ENI_ACTIONS)

        assert set(granted) <= allowed, f"{f.name}: unexpected {sorted(set(granted) - allowed)}"
        for action, resources in granted.items():
            if '"*"' in resources:
                unscoped = (
                    XRAY_ACTIONS
                    | set(ENI_ACTIONS)
                    | (set(OPERATOR_UNSCOPED_ACTIONS) if f.operates_stack else set())
                )
                assert action in unscoped, f"{f.name}: {action} on *"
        log_group = synth.lambda_props(f.name)["LoggingConfig"]["LogGroup"]["Ref"]
        assert granted["logs:PutLogEvents"] == {
            json.dumps({"Fn::GetAtt": [log_group, "Arn"]}, sort_keys=True)
        }


def test_a_scheduled_function_may_control_its_own_rule_and_functions_may_invoke_each_other(synthetic: Synth):
    """Names, not references: no dependency cycle even when the graph has one."""
    sync = permissions(synthetic, "marketplace-sync")
    assert any(":rule/opsdeck-prod-marketplace-sync" in r for r in sync["events:DisableRule"])
    assert any(":function:opsdeck-prod-marketplace-reconcile" in r for r in sync["lambda:InvokeFunction"])
    reconcile = permissions(synthetic, "marketplace-reconcile")
    assert any(":function:opsdeck-prod-marketplace-sync" in r for r in reconcile["lambda:InvokeFunction"])


def test_outside_functions_get_no_network_or_database_access(synthetic: Synth):
    granted = permissions(synthetic, "ops-worker")
    assert not any(a.startswith("ec2:") for a in granted)
    assert "secretsmanager:GetSecretValue" not in granted
