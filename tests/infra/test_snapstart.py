"""SnapStart where the catalog asks for it: a published version, the ``live`` alias, and every
trigger (API integration, event source mapping, schedule) invoking the alias.

``real`` is the dev profile (no SnapStart: no function sets it, and the rule is prod-only);
``synthetic`` is the prod profile (its HTTP functions by the rule, ``ops-worker`` — a queue
consumer — by an explicit ``snap_start=True``)."""

from __future__ import annotations

import json

from functions.catalog import Http, Queue, Schedule
from infra_cdk.functions import ALIAS
from tests.infra.conftest import Synth
from tests.infra.test_catalog_agreement import _ref_target


def _snap(synth: Synth) -> set[str]:
    return {f.name for f in synth.functions if f.snap_start_enabled(synth.config.profile)}


def test_the_profile_rule_and_the_catalog_field_decide(real: Synth, synthetic: Synth):
    assert _snap(real) == set()
    http = {f.name for f in synthetic.functions if isinstance(f.trigger, Http)}
    assert _snap(synthetic) == http | {"ops-worker"}


def test_snapstart_functions_publish_a_version_behind_the_live_alias(synth: Synth):
    versions = synth.of_type("AWS::Lambda::Version")
    aliases = synth.of_type("AWS::Lambda::Alias")
    for f in synth.functions:
        fn = synth.lambda_id(f.name)
        props = synth.lambda_props(f.name)
        mine = [v for v in versions.values() if v["Properties"]["FunctionName"] == {"Ref": fn}]
        alias = [a for a in aliases.values() if a["Properties"]["FunctionName"] == {"Ref": fn}]
        if f.name in _snap(synth):
            assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}, f.name
            assert len(mine) == 1 and len(alias) == 1, f.name
            assert alias[0]["Properties"]["Name"] == ALIAS
            (version_id,) = [k for k, v in versions.items() if v is mine[0]]
            assert alias[0]["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
        else:
            assert "SnapStart" not in props, f.name
            assert mine == [] and alias == [], f.name


def test_every_trigger_invokes_the_alias_where_snapstart_is_on(synth: Synth):
    checked = 0
    for f in synth.functions:
        target = synth.target_id(f.name)
        expected_type = "AWS::Lambda::Alias" if f.name in _snap(synth) else "AWS::Lambda::Function"
        assert synth.resources[target]["Type"] == expected_type, f.name
        if isinstance(f.trigger, Http):
            uris = {
                _ref_target(i["Properties"]["IntegrationUri"])
                for i in synth.of_type("AWS::ApiGatewayV2::Integration").values()
            }
            assert target in uris, f.name
            permitted = {
                _ref_target(p["Properties"]["FunctionName"])
                for p in synth.of_type("AWS::Lambda::Permission").values()
                if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
            }
            assert target in permitted, f.name
            checked += 1
        elif isinstance(f.trigger, Queue):
            mapped = {
                _ref_target(m["Properties"]["FunctionName"])
                for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
            }
            assert target in mapped, f.name
            if f.name in _snap(synth):
                assert synth.lambda_id(f.name) not in mapped  # never $LATEST
            checked += 1
        elif isinstance(f.trigger, Schedule):
            targets = {
                _ref_target(t["Arn"])
                for r in synth.of_type("AWS::Events::Rule").values()
                for t in r["Properties"]["Targets"]
            }
            assert target in targets, f.name
            checked += 1
    assert checked


def test_snapstart_functions_never_invoke_latest_through_their_triggers(synthetic: Synth):
    template = json.dumps(
        {
            k: v
            for k, v in synthetic.resources.items()
            if v["Type"] in ("AWS::ApiGatewayV2::Integration", "AWS::Lambda::EventSourceMapping")
        }
    )
    for name in _snap(synthetic):
        assert f'"{synthetic.lambda_id(name)}"' not in template, name
