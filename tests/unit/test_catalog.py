"""The catalog is consistent, every handler imports, and every function has a valid sample event."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import replace

import pytest

from functions import catalog
from functions.catalog import Function, Http, Queue, Route, Schedule
from localcloud.events import event_problems
from tests.support import EVENTS


def test_catalog_validates():
    catalog.validate()


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=lambda f: f.name)
def test_handler_imports_and_is_callable(function: Function):
    module = importlib.import_module(function.module)
    assert callable(getattr(module, function.attribute))


@pytest.mark.parametrize("function", catalog.FUNCTIONS, ids=lambda f: f.name)
def test_function_has_valid_sample_events(function: Function):
    samples = sorted((EVENTS / function.name).glob("*.json"))
    assert samples, f"events/{function.name}/ has no sample event"
    for sample in samples:
        problems = event_problems(function, json.loads(sample.read_text()))
        assert problems == [], f"{sample.relative_to(EVENTS)}: {problems}"


def test_every_http_route_of_the_catalog_is_served_by_its_app():
    """Catalog routes and FastAPI routes agree in both directions."""
    for function in catalog.FUNCTIONS:
        if not isinstance(function.trigger, Http):
            continue
        app = importlib.import_module(function.module).app
        served = {
            f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops
        } | {f"{m} {r.path}" for r in app.routes for m in getattr(r, "methods", None) or () if m != "HEAD"}
        declared = {r.key for r in function.trigger.routes}
        assert declared == served, (
            f"{function.name}: catalog-only {declared - served}, app-only {served - declared}"
        )


def test_event_directories_belong_to_catalog_functions():
    names = {f.name for f in catalog.FUNCTIONS}
    strays = [p.name for p in EVENTS.iterdir() if p.is_dir() and p.name not in names]
    assert strays == []


BASE = Function(
    name="ops-thing",
    capability="ops",
    handler="functions.ops.api.handler",
    trigger=Queue(name="ops-things", visibility_timeout_s=60),
    timeout_s=10,
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Ops_Thing"}, "kebab case"),
        ({"name": "backoffice-thing"}, "must start with ops-"),
        ({"capability": "nope"}, "unknown capability"),
        ({"timeout_s": 901}, "timeout_s"),
        ({"memory_mb": 64}, "memory_mb"),
        ({"trigger": Queue(name="q", visibility_timeout_s=59)}, "6 x timeout_s"),
        ({"trigger": Queue(name="q", batch_size=100)}, "batching_window_s >= 1"),
        ({"trigger": Queue(name="q", fifo=True, batch_size=11)}, "batch_size must be within 1..10"),
        ({"trigger": Queue(name="q", max_concurrency=1)}, "max_concurrency"),
        ({"trigger": Schedule(expression="every 5 minutes")}, "neither rate"),
        ({"trigger": Schedule(expression="rate(1 minutes)")}, "rate(1 minute)"),
        ({"trigger": Http(routes=(Route("GET", "/backoffice/x"),))}, "outside /ops"),
        ({"trigger": Http(routes=(Route("FETCH", "/ops/x"),))}, "invalid route"),
        ({"trigger": Http(routes=(Route("GET", "/ops/x"),)), "timeout_s": 30}, "29 s"),
        ({"sends_to": ("nowhere",)}, "undeclared queue"),
        ({"invokes": ("ops-ghost",)}, "undeclared function"),
    ],
)
def test_validation_names_the_contradiction(change, message):
    with pytest.raises(catalog.CatalogError, match=re.escape(message)):
        catalog.validate((replace(BASE, **change),))


def test_duplicates_are_refused():
    twice = (BASE, replace(BASE, trigger=Queue(name="other", visibility_timeout_s=60)))
    with pytest.raises(catalog.CatalogError, match="declared twice"):
        catalog.validate(twice)
    same_queue = (BASE, replace(BASE, name="ops-thing-two"))
    with pytest.raises(catalog.CatalogError, match="queue 'ops-things' declared twice"):
        catalog.validate(same_queue)


def test_wiring_environment_names_every_resource():
    f = replace(
        BASE,
        sends_to=("ops-things",),
        secrets=("ops-key",),
        invokes=("ops-thing",),
    )
    assert f.wiring_environment() == {
        "OPS_THINGS_QUEUE_URL": ("queue", "ops-things"),
        "OPS_KEY_SECRET_ID": ("secret", "ops-key"),
        "OPS_THING_FUNCTION_NAME": ("function", "ops-thing"),
    }


def test_fifo_queue_names():
    q = Queue(name="ops-jobs", fifo=True)
    assert (q.queue_name, q.dlq_name) == ("ops-jobs.fifo", "ops-jobs-dlq.fifo")


def test_every_handler_imports_in_a_lambda_like_process():
    """Each handler in its own fresh ``python -S``, with only the code root, the layer and the
    dependencies on the path (as /var/task and /opt/python in Lambda): it imports, and every
    module it deferred loads. One process per function, as Lambda has, so no handler relies on
    what another one happened to import."""
    import os
    import subprocess
    import sys
    import sysconfig

    from tests.support import ROOT

    path = os.pathsep.join([str(ROOT), str(ROOT / "layers/common/python"), sysconfig.get_paths()["purelib"]])
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": path, "LAMBDA_TASK_ROOT": str(ROOT)}
    running = {
        f.name: subprocess.Popen(
            [sys.executable, "-S", "-c", f"import {f.module}\nimport opsdeck.lazy\nopsdeck.lazy.load_all()"],
            env={**env, **f.runtime_environment("test")},
            cwd="/",
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in catalog.FUNCTIONS
    }
    failed = {}
    for name, process in running.items():
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failed[name] = stderr.strip().splitlines()[-1]
    assert failed == {}


def test_every_function_extra_is_a_pyproject_group_that_adds_to_the_common_layer():
    """``Function.extras`` names pyproject.toml's optional-dependencies groups: each is a layer of
    its own (infra_cdk/bundling.py), which must add something the common layer does not have."""
    from infra_cdk import bundling

    extras = {extra for f in catalog.FUNCTIONS for extra in f.extras}
    assert extras == {"graphql", "migrations"}
    for extra in extras:
        pins = bundling.extra_pins(extra)
        assert pins, extra
        common = bundling.runtime_requirements()
        assert not {bundling._distribution_name(p.split("==")[0]) for p in pins} & {
            bundling._distribution_name(r) for r in common
        }
    with pytest.raises(ValueError, match="not an optional-dependencies group"):
        bundling.extra_requirements("no-such-extra")


def test_an_extra_must_be_named_once_and_like_a_pyproject_group():
    base = catalog.by_name()["product-monitor-graphql"]
    for bad in (("graphql", "graphql"), ("GraphQL",)):
        with pytest.raises(catalog.CatalogError, match="extras"):
            catalog.validate((replace(base, extras=bad),), ())
