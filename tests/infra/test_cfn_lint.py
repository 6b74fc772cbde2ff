"""cfn-lint (the CloudFormation linter AWS maintains) over every stage profile's template.

``real`` is the dev profile, ``synthetic`` the prod profile (tests/infra/conftest.py): both
templates from the session's one synth. Zero errors; every warning is either fixed in the
construct that caused it or waived in ``WAIVED`` below with its reason. Informational
findings (``I…``) are not asserted.
"""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synth

#: rule id → why the finding is accepted (the one place warnings are waived)
WAIVED: dict[str, str] = {}

#: the region the templates are linted for (resource specs and engine versions differ per region)
REGIONS = ["eu-west-1"]


def _lint(raw: dict) -> list:
    from cfnlint.api import ManualArgs, lint

    return lint(json.dumps(raw), config=ManualArgs(regions=REGIONS))


@pytest.fixture(scope="module")
def findings(real: Synth, synthetic: Synth) -> dict[str, list]:
    return {"real": _lint(real.raw), "synthetic": _lint(synthetic.raw)}


def _describe(match) -> str:
    return f"{match.rule.id} {'/'.join(str(p) for p in match.path)}: {match.message}"


@pytest.mark.parametrize("stack", ["real", "synthetic"])
def test_no_errors_and_no_unwaived_warnings(findings, stack):
    problems = [
        _describe(m)
        for m in findings[stack]
        if m.rule.id[0] == "E" or (m.rule.id[0] == "W" and m.rule.id not in WAIVED)
    ]
    assert problems == []


def test_every_waiver_has_a_reason_and_is_still_needed(findings):
    seen = {m.rule.id for matches in findings.values() for m in matches}
    for rule, reason in WAIVED.items():
        assert len(reason) >= 40, f"{rule} needs a real reason"
        assert rule in seen, f"{rule} is waived but no template triggers it any more: drop the waiver"


def test_the_linter_really_runs():
    """A template with a known mistake gives findings (the test above cannot pass vacuously)."""
    broken = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "soon"}},
            "T": {"Type": "AWS::SNS::Topic", "DependsOn": "Missing"},
        },
    }
    ids = {m.rule.id for m in _lint(broken)}
    assert any(i.startswith("E") for i in ids)


def test_depends_on_keeps_what_orders_the_deployment_and_nothing_implied(synth: Synth):
    """infra_cdk/lint.py pruned only what the properties imply (a Ref/GetAtt/Sub of the id)."""
    migrations = [k for k, v in synth.resources.items() if v["Type"] == "Custom::OpsdeckMigrations"]
    for logical, resource in synth.resources.items():
        properties = json.dumps(resource.get("Properties", {}))
        for dependency in resource.get("DependsOn", []):
            assert dependency in synth.resources, f"{logical} depends on a missing {dependency}"
            assert f'"{dependency}"' not in properties, f"{logical}: DependsOn {dependency} is implied"
    for f in synth.functions:
        props = synth.resources[synth.lambda_id(f.name)]
        role = props["Properties"]["Role"]["Fn::GetAtt"][0]
        policies = [
            k
            for k, v in synth.of_type("AWS::IAM::Policy").items()
            if {"Ref": role} in v["Properties"]["Roles"]
        ]
        assert set(policies) <= set(props.get("DependsOn", [])), f"{f.name} no longer waits for its policy"
        if f.trigger.kind != "deploy":
            assert set(migrations) <= set(props.get("DependsOn", [])), (
                f"{f.name} no longer waits for migrations"
            )
