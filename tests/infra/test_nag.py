"""cdk-nag AwsSolutions: zero unacknowledged findings; every acknowledgement carries a reason."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Validations

from tests.infra.conftest import Synth


def test_no_unacknowledged_findings(synth: Synth):
    findings = [
        f"{v['ruleName']} at {c['constructPath']}"
        for plugin in synth.report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
        if v.get("severity") != "warning"  # our own synth warnings (e.g. egress) are not findings
    ]
    assert findings == []
    assert synth.synth_error is None


def test_the_app_fails_on_a_finding(tmp_path):
    """build_app really runs cdk-nag: an unencrypted, plain-HTTP queue fails the synth."""
    from aws_cdk import aws_sqs as sqs

    from infra_cdk.app import build_app
    from tests.infra.conftest import SYNTHETIC

    app, stack = build_app({"bundle": "false"}, functions=SYNTHETIC[1:2], outdir=str(tmp_path))
    sqs.Queue(stack, "Careless", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_every_acknowledgement_has_a_reason(synth: Synth):
    acknowledged = []
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            # {"Annotation::AwsSolutions-RDS11": reason}; CDK adds its own CloudFormation-Validate ones
            for rule, reason in entry.data.items():
                if "AwsSolutions-" in rule:
                    acknowledged.append((construct.node.path, rule, reason))
    assert acknowledged
    for path, rule, reason in acknowledged:
        assert len(reason) >= 40, f"{path}: {rule} needs a real reason, not {reason!r}"
