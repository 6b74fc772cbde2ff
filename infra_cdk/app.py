"""The CDK app: context → ``DeployConfig`` → ``OpsdeckStack``, checked by cdk-nag.

``build_app()`` is what ``cdk synth`` runs (``cdk.json``: ``python -m infra_cdk``), what
``python -m infra_cdk`` runs without the CDK CLI, and what the tests call. It applies the
context of ``cdk.json`` itself, so both ways synthesize the same template; ``context`` passed
here wins over cdk.json, and the CDK CLI's ``-c`` values win over both. cdk-nag's AwsSolutions
pack runs on every synth as a policy-validation plugin: an unacknowledged finding fails the
synth (``cdk synth`` exits non-zero, ``validation-report.json`` lists it).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

_LAYER = Path(__file__).resolve().parent.parent / "layers" / "common" / "python"
if str(_LAYER) not in sys.path:  # the catalog imports opsdeck.naming, as functions do from /opt/python
    sys.path.append(str(_LAYER))

from aws_cdk import Annotations, App, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from functions import catalog  # noqa: E402
from functions.catalog import Bucket, Function  # noqa: E402

from .config import KEYS, DeployConfig  # noqa: E402
from .stack import OpsdeckStack  # noqa: E402

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
_OWN_KEY = re.compile(r"^[a-z][A-Za-z0-9]*$")


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads(CDK_JSON.read_text()).get("context", {})) if CDK_JSON.is_file() else {}


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    functions: tuple[Function, ...] = catalog.FUNCTIONS,
    buckets: tuple[Bucket, ...] = catalog.BUCKETS,
    outdir: str | None = None,
    nag: bool = True,
) -> tuple[App, OpsdeckStack]:
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = DeployConfig.from_context(app.node.try_get_context)
    stack = OpsdeckStack(app, config=config, functions=functions, buckets=buckets)
    unknown = sorted(
        key
        for key in {**cdk_json_context(), **(context or {}), **_cli_context()}
        if _OWN_KEY.match(key) and key not in KEYS
    )
    if unknown:
        Annotations.of(stack).add_warning_v2(
            "opsdeck:unknown-context", f"unknown context key(s) {', '.join(unknown)} (see docs/deploy.md)"
        )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def _cli_context() -> dict[str, Any]:
    try:
        return dict(json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}"))
    except ValueError:
        return {}
