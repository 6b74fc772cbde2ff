"""Infra tests: each stack is synthesized ONCE per session and shared by every test.

Two stacks, so that coverage never depends on what the capabilities happen to declare today:

* ``real`` — ``catalog.FUNCTIONS`` as the repository has it, dev profile (the defaults of cdk.json);
* ``synthetic`` — ``SYNTHETIC``, a catalog exercising every trigger kind (http with and without
  the JWT authorizer, schedule with input/name/disabled, standard queue with a 10,000 batch and
  batching window, FIFO queue, deploy, manual) and every resource kind (database, cache,
  sends_to, secrets — one created, one imported —, controls_schedules incl. its own rule,
  mutual invokes, reserved concurrency, tracer, environment, buckets — one expiring, one with
  CORS, one declared but unused), synthesized with the prod
  profile and ``egress=endpoints``; ``scheduleExpressions`` overrides one schedule's expression.

Both skip pip (``bundle=false``); cdk-nag runs on both (test_nag.py reads the report).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from functions import catalog
from functions.catalog import Bucket, Deploy, Function, Http, Manual, Queue, Route, Schedule

IMPORTED_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:shared/spapi-AbC123"

SYNTHETIC: tuple[Function, ...] = (
    Function(
        name="ops-api",
        capability="ops",
        handler="functions.ops.api.handler",
        trigger=Http(
            routes=(
                Route("GET", "/ops/health"),
                Route("GET", "/ops/private/{item_id}", authorizer="jwt"),
                Route("POST", "/ops/private", authorizer="jwt", scopes=("ops/write",)),
                Route("ANY", "/ops/files/{path+}", authorizer="jwt"),
            )
        ),
        database=True,
        cache=True,
        sends_to=("ops-work",),
        reserved_concurrency=5,
    ),
    Function(
        name="ops-migrate",
        capability="ops",
        handler="functions.ops.migrate.handler",
        trigger=Deploy(),
        timeout_s=300,
        memory_mb=512,
        database=True,
    ),
    Function(
        name="marketplace-sync",
        capability="marketplace",
        handler="functions.marketplace.sync.handler",
        trigger=Schedule(expression="rate(15 minutes)", input={"mode": "incremental", "pages": 5}),
        timeout_s=120,
        database=True,
        cache=True,
        secrets=("marketplace-spapi", "marketplace-slack"),
        sends_to=("marketplace-notify",),
        controls_schedules=("marketplace-sync", "marketplace-nightly"),
        invokes=("marketplace-reconcile",),
        tracer=True,
        environment={"SPAPI_REGION": "eu"},
        buckets=("marketplace-uploads",),
    ),
    Function(
        name="marketplace-nightly",
        capability="marketplace",
        handler="functions.marketplace.nightly.handler",
        trigger=Schedule(expression="cron(0 3 * * ? *)", name="marketplace-nightly", enabled=False),
        timeout_s=60,
        secrets=("marketplace-spapi",),
    ),
    Function(
        name="marketplace-notifier",
        capability="marketplace",
        handler="functions.marketplace.notifier.handler",
        trigger=Queue(name="marketplace-notify", fifo=True, batch_size=10, visibility_timeout_s=180),
        timeout_s=30,
        secrets=("marketplace-slack",),
    ),
    Function(
        name="marketplace-reconcile",
        capability="marketplace",
        handler="functions.marketplace.reconcile.handler",
        trigger=Manual(),
        timeout_s=900,
        memory_mb=1024,
        database=True,
        invokes=("marketplace-sync",),
    ),
    Function(
        name="backoffice-consumer",
        capability="backoffice",
        handler="functions.backoffice.consumer.handler",
        trigger=Queue(
            name="backoffice-changes",
            batch_size=10_000,
            batching_window_s=5,
            visibility_timeout_s=600,
            max_receive_count=3,
            max_concurrency=10,
            retention_s=7 * 24 * 3600,
        ),
        timeout_s=100,
        memory_mb=2048,
        database=True,
    ),
    Function(
        name="backoffice-api",
        capability="backoffice",
        handler="functions.backoffice.api.handler",
        trigger=Http(routes=(Route("GET", "/backoffice/admin/tx/{tx_id}"),)),
        database=True,
        sends_to=("backoffice-changes",),
        buckets=("backoffice-exports",),
    ),
    Function(
        name="ops-worker",
        capability="ops",
        handler="functions.ops.worker.handler",
        trigger=Queue(name="ops-work", batch_size=5, visibility_timeout_s=120),
        timeout_s=20,
        sends_to=("backoffice-changes",),
        snap_start=True,
    ),
)
SYNTHETIC_BUCKETS: tuple[Bucket, ...] = (
    Bucket(name="backoffice-exports", capability="backoffice", expire_after_days=7),
    Bucket(
        name="marketplace-uploads",
        capability="marketplace",
        cors_origins=("https://admin.example.com",),
        description="browser uploads",
    ),
    Bucket(name="backoffice-unused", capability="backoffice"),
)
catalog.validate(SYNTHETIC, SYNTHETIC_BUCKETS)

REAL_CONTEXT: dict[str, Any] = {"bundle": "false"}
SYNTHETIC_CONTEXT: dict[str, Any] = {
    "bundle": "false",
    "stage": "prod",
    "egress": "endpoints",
    "jwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
    "jwtAudience": "opsdeck-client",
    "alarmEmails": "oncall@example.com",
    "corsAllowOrigins": "https://admin.example.com",
    "secretArns": json.dumps({"marketplace-spapi": IMPORTED_SECRET_ARN}),
    "scheduleExpressions": json.dumps({"marketplace-nightly": "cron(15 2 ? * MON-FRI *)"}),
}


@dataclass
class Synth:
    """One synthesized stack: the template as a dict and as ``aws_cdk.assertions.Template``."""

    functions: tuple[Function, ...]
    buckets: tuple[Bucket, ...]
    stack: Any
    template: Any
    raw: dict[str, Any]
    report: dict[str, Any]
    synth_error: str | None
    config: Any
    _by_type: dict[str, dict[str, dict]] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict]:
        return self.raw["Resources"]

    def of_type(self, type_: str) -> dict[str, dict]:
        if type_ not in self._by_type:
            self._by_type[type_] = {k: v for k, v in self.resources.items() if v["Type"] == type_}
        return self._by_type[type_]

    def lambda_id(self, function: str) -> str:
        """Logical id of the catalog function's AWS::Lambda::Function (found by its tag)."""
        found = [
            k
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if {"Key": "opsdeck:function", "Value": function} in v["Properties"].get("Tags", [])
        ]
        assert len(found) == 1, f"{function}: {len(found)} Lambda functions tagged with it"
        return found[0]

    def target_id(self, function: str) -> str:
        """Logical id of what the function's triggers invoke: its ``live`` alias under SnapStart."""
        fn = self.lambda_id(function)
        aliases = [
            k
            for k, v in self.of_type("AWS::Lambda::Alias").items()
            if v["Properties"]["FunctionName"] == {"Ref": fn}
        ]
        assert len(aliases) <= 1, f"{function}: {len(aliases)} aliases"
        return aliases[0] if aliases else fn

    def lambda_props(self, function: str) -> dict[str, Any]:
        return self.resources[self.lambda_id(function)]["Properties"]

    def queue_id(self, physical_name: str) -> str:
        found = [
            k
            for k, v in self.of_type("AWS::SQS::Queue").items()
            if v["Properties"]["QueueName"] == physical_name
        ]
        assert len(found) == 1, f"queue {physical_name}: {len(found)} found"
        return found[0]

    def name(self, kind: str, value: Any) -> str:
        from infra_cdk.names import Names

        return getattr(Names(self.config.stack_name), kind)(value)


def _synthesize(
    functions: tuple[Function, ...], buckets: tuple[Bucket, ...], context: dict[str, Any], outdir: Path
) -> Synth:
    from aws_cdk.assertions import Template

    from infra_cdk.app import build_app

    app, stack = build_app(context, functions=functions, buckets=buckets, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail the synth after the template is written
        error = str(exc)
    raw = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else {"pluginReports": []}
    return Synth(
        functions=functions,
        buckets=buckets,
        stack=stack,
        template=Template.from_json(raw),
        raw=raw,
        report=report,
        synth_error=error,
        config=stack.config,
    )


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesize(catalog.FUNCTIONS, catalog.BUCKETS, REAL_CONTEXT, tmp_path_factory.mktemp("cdk-real"))


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesize(
        SYNTHETIC, SYNTHETIC_BUCKETS, SYNTHETIC_CONTEXT, tmp_path_factory.mktemp("cdk-synthetic")
    )


@pytest.fixture(params=["real", "synthetic"])
def synth(request: pytest.FixtureRequest) -> Synth:
    """Each test that takes ``synth`` runs against both stacks."""
    return request.getfixturevalue(request.param)
