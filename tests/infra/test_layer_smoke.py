"""The real layer, built and run: ``OPSDECK_LAYER_SMOKE=1 python -m pytest tests/infra/test_layer_smoke.py``.

Skipped by default: it runs pip (a package registry must be reachable the first time; builds
are cached in ``build/``). Lambda runs the arm64 layer; this machine cannot, so the same
dependency set is built for this machine through the same code path
(``bundling.build_layer(architecture=…)``) and run in a Lambda-like process
(``infra_cdk.layer_check``: ``python -S``, read-only, function code + layer + a stand-in for
the runtime's boto3 on ``PYTHONPATH``). ``layer_probe.py`` imports every catalog handler and
exercises the paths that could need third-party sources at run time; the default
(``sourceless``) layer must behave exactly like the one that keeps every source (``pycache``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from importlib import metadata
from pathlib import Path

import pytest

from functions import catalog
from infra_cdk import bundling, layer_check

if os.environ.get("OPSDECK_LAYER_SMOKE") != "1":
    pytest.skip("builds the real layer with pip: set OPSDECK_LAYER_SMOKE=1", allow_module_level=True)
if not bundling.bytecode_supported():
    pytest.skip("the layer's bytecode is built by Python 3.12 only", allow_module_level=True)
pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("layer_probe.py")
MB = 1024 * 1024
CHECKS = {
    "handlers",
    "ops_api_functions",
    "openapi",
    "consumer_without_database",
    "jwt",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "powertools",
    "anyio_lazy",
}
#: What a catalog function gets (Function.runtime_environment + platform settings), no database.
FUNCTION_ENV = {
    "STAGE": "smoke",
    "POWERTOOLS_SERVICE_NAME": "ops",
    "POWERTOOLS_METRICS_NAMESPACE": "opsdeck",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "JWT_ISSUER": "https://issuer.example.com/smoke",
    "JWT_AUDIENCE": "opsdeck",
    "JWT_ALGORITHMS": "HS256",
    "JWT_HS256_SECRET": "smoke-test-secret-of-at-least-32-bytes",
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    return layer_check.runtime_stand_in(tmp_path_factory.mktemp("var") / "runtime")


#: every function extra of the catalog: the probe imports every handler in one process
EXTRAS = sorted({extra for f in catalog.FUNCTIONS for extra in f.extras})


def _extra_layers(bytecode: str, extras=EXTRAS) -> dict[str, Path]:
    machine = layer_check.machine()
    return {e: bundling.build_extra_layer(e, bytecode=bytecode, architecture=machine).path for e in extras}


def _probe(bytecode: str, runtime: Path) -> dict:
    layer, env = layer_check.variant(bytecode, runtime, FUNCTION_ENV, extras=EXTRAS)
    extras = _extra_layers(bytecode)
    env.update(
        PROBE_LAYER=os.pathsep.join(str(p / "python") for p in [layer.path, *extras.values()]),
        PROBE_RUNTIME=str(runtime),
        PROBE_EVENTS=str(bundling.ROOT / "events"),
    )
    done = layer_check.run(PROBE.read_text(), env)
    assert done.returncode == 0, done.stderr[-4000:]
    return {
        "layer": layer.path / "python",
        "extras": {e: p / "python" for e, p in extras.items()},
        **json.loads(done.stdout.strip().splitlines()[-1]),
    }


@pytest.fixture(scope="module")
def sourceless(runtime) -> dict:
    return _probe("sourceless", runtime)


@pytest.fixture(scope="module")
def with_sources(runtime) -> dict:
    return _probe("pycache", runtime)


def _third_party(name: str) -> bool:
    return name.split(".")[0] not in ("opsdeck", "functions", "migrations")


def test_every_handler_imports_and_every_path_runs(sourceless):
    assert sourceless["errors"] == {}, "\n\n".join(f"{k}:\n{v}" for k, v in sourceless["errors"].items())
    results = sourceless["results"]
    assert set(results) == CHECKS
    assert results["ops_api_functions"] == 200
    # no database configured: the batch fails as a whole or record by record, but it is reported
    assert results["consumer_without_database"] in ({"raised": "ConfigError"},) or results[
        "consumer_without_database"
    ].get("failed")
    assert results["jwt"]["verified"] == "smoke"
    assert results["sqlalchemy"]["traceback_frames_in_layer"] > 0
    assert results["sqlalchemy"]["layer_frames_named_under_opt_python"]
    assert results["anyio_lazy"] == {"lazy_names": True}  # KEEP_SOURCE at work


def test_modules_come_only_from_code_layer_runtime_and_stdlib(sourceless):
    modules = sourceless["modules"]
    elsewhere = {n: m["file"] for n, m in modules.items() if m["origin"].startswith("elsewhere")}
    assert not elsewhere
    assert any(m["origin"] == "runtime" for m in sourceless["modules"].values())  # botocore


def test_third_party_modules_run_from_bytecode_alone(sourceless):
    kept = {
        name
        for name, m in sourceless["modules"].items()
        if m["origin"] == "layer" and m["loader"] == "SourceFileLoader" and _third_party(name)
    }
    assert kept == {
        p.removesuffix("/__init__.py").removesuffix(".py").replace("/", ".")
        for p in bundling.KEEP_SOURCE
        if p.endswith(".py")
    }
    sourceless_loaded = [n for n, m in sourceless["modules"].items() if m["loader"] == "SourcelessFileLoader"]
    assert len(sourceless_loaded) > 300
    ours = {n: m["loader"] for n, m in sourceless["modules"].items() if n.split(".")[0] == "opsdeck"}
    assert set(ours.values()) == {"SourceFileLoader"}  # readable tracebacks for our code


def test_sourceless_behaves_like_the_layer_with_sources(sourceless, with_sources):
    assert with_sources["errors"] == {}

    def comparable(results: dict) -> dict:  # only the file names of tracebacks differ
        frames = {**results["sqlalchemy"], "layer_frames_named_under_opt_python": None}
        return {**results, "sqlalchemy": frames}

    assert comparable(sourceless["results"]) == comparable(with_sources["results"])
    # the same modules, from the same places: nothing takes another path without its sources
    # (anyio without its __init__ source would import all of itself eagerly)
    assert {n: m["origin"] for n, m in sourceless["modules"].items()} == {
        n: m["origin"] for n, m in with_sources["modules"].items()
    }


def test_layer_content_sourceless_bytecode_metadata_kept(sourceless):
    root: Path = sourceless["layer"]
    sources = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}
    assert {s for s in sources if not s.startswith("opsdeck/")} == {
        s for s in sources if not s.startswith("opsdeck/") and bundling._kept(s, bundling.KEEP_SOURCE)
    }
    legacy = root / "sqlalchemy" / "engine" / "base.pyc"
    header = legacy.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert not (root / "sqlalchemy" / "__pycache__").exists()
    assert (root / "opsdeck" / "__pycache__").is_dir() and (root / "opsdeck" / "db.py").is_file()
    distributions = metadata.distributions(path=[str(root)])
    names = {bundling._distribution_name(d.metadata["Name"]) for d in distributions}
    assert {"fastapi", "pydantic", "sqlalchemy", "aws-lambda-powertools"} <= names
    # the function extras live in their own layers, not in the common one
    assert not names & {"alembic", "mako", "graphql-core"}
    extras = {
        extra: {
            bundling._distribution_name(d.metadata["Name"]) for d in metadata.distributions(path=[str(path)])
        }
        for extra, path in sourceless["extras"].items()
    }
    assert extras == {"graphql": {"graphql-core"}, "migrations": {"alembic", "mako", "markupsafe"}}
    assert (sourceless["extras"]["migrations"] / "alembic" / "templates" / "generic" / "env.py").is_file()


def test_a_function_without_an_extra_cannot_import_it(runtime):
    """Per function, as Lambda attaches them: only its own extras are importable."""
    probe = (
        "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
        "for m in ('graphql', 'alembic', 'mako', 'fastapi')}))"
    )
    functions = {f.name: f for f in catalog.FUNCTIONS}
    found = {}
    for name in ("product-monitor-api", "product-monitor-graphql", "ops-migrate"):
        _, env = layer_check.variant("sourceless", runtime, FUNCTION_ENV, extras=functions[name].extras)
        done = layer_check.run(probe, env)
        assert done.returncode == 0, done.stderr[-2000:]
        found[name] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "product-monitor-api": {"graphql": False, "alembic": False, "mako": False, "fastapi": True},
        "product-monitor-graphql": {"graphql": True, "alembic": False, "mako": False, "fastapi": True},
        "ops-migrate": {"graphql": False, "alembic": True, "mako": True, "fastapi": True},
    }


def test_the_deployed_arm64_layer_is_the_checked_one_and_meets_the_target(sourceless):
    arm = bundling.build_layer(architecture="aarch64").path / "python"

    def modules(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*.py*") if p.suffix in (".py", ".pyc")}

    assert modules(arm) == modules(sourceless["layer"])
    code = bundling.tree_size(bundling.function_code(bytecode=True).path)
    common = bundling.tree_size(arm.parent)
    for f in catalog.FUNCTIONS:  # what Lambda counts per function: its layers + its code
        extras = sum(bundling.tree_size(bundling.build_extra_layer(e).path) for e in f.extras)
        total = common + code + extras
        assert total < 50 * MB, f"{f.name}: layers + function code: {total / MB:.1f} MB"
