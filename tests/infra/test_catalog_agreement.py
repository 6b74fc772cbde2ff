"""Template and catalog agree in both directions: every catalog entry has its function, trigger,
DLQ, alarms and migrations; every function, queue, rule, route and mapping in the template comes
from the catalog."""

from __future__ import annotations

import json

from functions.catalog import Deploy, Http, Manual, Queue, Schedule, schedule_name
from tests.infra.conftest import Synth


def _ref_target(value) -> str:
    """Logical id behind ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}`` (also inside the
    ``Fn::Join``/``Fn::Select`` CDK builds around an alias ARN)."""
    if "Ref" in value:
        return value["Ref"]
    if "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    stack = list(value.values())
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            if "Ref" in item or "Fn::GetAtt" in item:
                return _ref_target(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError(f"no reference in {value!r}")


def test_functions_both_directions(synth: Synth):
    catalog_names = {f.name for f in synth.functions}
    tagged = {}
    others = []
    for logical_id, resource in synth.of_type("AWS::Lambda::Function").items():
        tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        if "opsdeck:function" in tags:
            tagged[tags["opsdeck:function"]] = resource["Properties"]
        else:
            others.append((logical_id, resource["Properties"]["Runtime"]))
    assert set(tagged) == catalog_names
    for name, props in tagged.items():
        assert props["FunctionName"] == synth.name("function", name)
    # Everything else is CDK's own machinery (custom-resource providers), never Python code.
    assert all(runtime.startswith("nodejs") for _, runtime in others), others
    assert len(others) <= 4, others


def test_handlers_and_sizes_follow_the_catalog(synth: Synth):
    for f in synth.functions:
        props = synth.lambda_props(f.name)
        assert props["Handler"] == f.handler
        assert props["MemorySize"] == f.memory_mb
        assert props["Timeout"] == f.timeout_s
        assert props.get("ReservedConcurrentExecutions") == f.reserved_concurrency


def test_queues_both_directions(synth: Synth):
    expected = set()
    for f in synth.functions:
        if isinstance(f.trigger, Queue):
            expected |= {synth.name("queue", f.trigger), synth.name("dlq", f.trigger)}
    actual = {r["Properties"]["QueueName"] for r in synth.of_type("AWS::SQS::Queue").values()}
    assert actual == expected


def test_event_source_mappings_both_directions(synth: Synth):
    queue_names = {k: v["Properties"]["QueueName"] for k, v in synth.of_type("AWS::SQS::Queue").items()}
    function_ids = {synth.target_id(f.name): f.name for f in synth.functions}
    actual = {
        (
            queue_names[_ref_target(m["Properties"]["EventSourceArn"])],
            function_ids[_ref_target(m["Properties"]["FunctionName"])],
        )
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
    }
    expected = {
        (synth.name("queue", f.trigger), f.name) for f in synth.functions if isinstance(f.trigger, Queue)
    }
    assert actual == expected
    assert len(synth.of_type("AWS::Lambda::EventSourceMapping")) == len(expected)


def test_schedules_both_directions(synth: Synth):
    function_ids = {synth.target_id(f.name): f.name for f in synth.functions}
    actual = {}
    for rule in synth.of_type("AWS::Events::Rule").values():
        props = rule["Properties"]
        (target,) = props["Targets"]
        actual[props["Name"]] = (
            props["ScheduleExpression"],
            props["State"],
            function_ids[_ref_target(target["Arn"])],
        )
    overrides = synth.config.schedule_expressions  # context scheduleExpressions
    expected = {
        synth.name("rule", schedule_name(f)): (
            overrides.get(schedule_name(f), f.trigger.expression),
            "ENABLED" if f.trigger.enabled else "DISABLED",
            f.name,
        )
        for f in synth.functions
        if isinstance(f.trigger, Schedule)
    }
    assert actual == expected


def test_routes_both_directions(synth: Synth):
    integrations = {
        k: _ref_target(v["Properties"]["IntegrationUri"])
        for k, v in synth.of_type("AWS::ApiGatewayV2::Integration").items()
    }
    function_ids = {synth.target_id(f.name): f.name for f in synth.functions}
    actual = {}
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        integration_id = props["Target"]["Fn::Join"][1][1]["Ref"]
        actual[props["RouteKey"]] = (
            function_ids[integrations[integration_id]],
            props.get("AuthorizationType"),
        )
    expected = {
        r.key: (f.name, "JWT" if r.authorizer == "jwt" else "NONE")
        for f in synth.functions
        if isinstance(f.trigger, Http)
        for r in f.trigger.routes
    }
    assert actual == expected


def test_every_function_has_error_and_throttle_alarms(synth: Synth):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    for f in synth.functions:
        function_ref = {"Ref": synth.lambda_id(f.name)}
        for what, metric in (("errors", "Errors"), ("throttles", "Throttles")):
            alarm = alarms[f"{synth.config.stack_name}-{f.name}-{what}"]
            assert alarm["MetricName"] == metric
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": function_ref}]
            assert alarm["Threshold"] == 0
            assert alarm["AlarmActions"] and alarm["OKActions"]


def test_every_queue_has_a_dlq_depth_alarm(synth: Synth):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    for f in synth.functions:
        if not isinstance(f.trigger, Queue):
            continue
        alarm = alarms[f"{synth.config.stack_name}-{f.trigger.name}-dlq-depth"]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        (dimension,) = alarm["Dimensions"]
        dlq_id = synth.queue_id(synth.name("dlq", f.trigger))
        assert dimension["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_deploy_functions_are_custom_resources_and_manual_functions_have_no_trigger(synth: Synth):
    migrations = synth.of_type("Custom::OpsdeckMigrations")
    deploy = [f for f in synth.functions if isinstance(f.trigger, Deploy)]
    assert sorted(m["Properties"]["Function"] for m in migrations.values()) == sorted(f.name for f in deploy)
    for f in synth.functions:
        if not isinstance(f.trigger, Manual | Deploy):
            continue
        logical_id = synth.lambda_id(f.name)
        for type_ in ("AWS::Lambda::Permission", "AWS::Lambda::EventSourceMapping", "AWS::Events::Rule"):
            for resource in synth.of_type(type_).values():
                assert f'"{logical_id}"' not in json.dumps(resource), (f.name, type_)
