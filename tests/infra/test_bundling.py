"""Assets: what the function code and the layer contain, and how the layer is built (no network here)."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from infra_cdk import bundling


def test_function_code_is_functions_and_migrations_without_dev_tooling(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for path in (
        "functions/__init__.py",
        "functions/catalog.py",
        "functions/shop/api.py",
        "functions/shop/simulator.py",
        "functions/shop/demo.py",
        "functions/shop/cli.py",
        "functions/shop/tests/test_api.py",
        "functions/shop/__pycache__/api.cpython-312.pyc",
        "migrations/env.py",
        "migrations/versions/shop/0001_shop.py",
        "localcloud/events.py",
        "README.md",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"# {path}\n")
    monkeypatch.setattr(bundling, "ROOT", root)
    monkeypatch.setattr(bundling, "BUILD", tmp_path / "build")
    asset = bundling.function_code(bytecode=False)
    files = sorted(str(p.relative_to(asset.path)) for p in asset.path.rglob("*") if p.is_file())
    assert files == [
        "functions/__init__.py",
        "functions/catalog.py",
        "functions/shop/api.py",
        "migrations/env.py",
        "migrations/versions/shop/0001_shop.py",
    ]
    assert bundling.function_code(bytecode=False) == asset  # cached by content
    (root / "functions/shop/api.py").write_text("# changed\n")
    assert bundling.function_code(bytecode=False).key != asset.key


def test_function_code_bytecode_is_valid_without_timestamps(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    (root / "functions").mkdir(parents=True)
    (root / "functions/__init__.py").write_text("")
    (root / "functions/mod.py").write_text("VALUE = 1\n")
    (root / "migrations").mkdir()
    monkeypatch.setattr(bundling, "ROOT", root)
    monkeypatch.setattr(bundling, "BUILD", tmp_path / "build")
    asset = bundling.function_code(bytecode=True)
    if sys.version_info[:2] != (3, 12):
        return
    (pyc,) = asset.path.glob("functions/__pycache__/mod.cpython-312.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01, "unchecked-hash pyc: Lambda's zip timestamps do not invalidate it"


def test_layer_requirements_come_from_pyproject():
    declared = tomllib.loads((bundling.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert bundling.runtime_requirements(include_boto3=True) == declared
    without = bundling.runtime_requirements()
    assert {bundling._distribution_name(r) for r in without} == {
        bundling._distribution_name(r) for r in declared
    } - {"boto3", "botocore", "s3transfer"}


def test_constraints_pin_the_tested_closure_and_respect_the_runtime_botocore():
    requirements = bundling.runtime_requirements()
    constraints = bundling.pinned_constraints(requirements)
    pins = dict(line.split("==") for line in constraints if "==" in line)
    # top-level and transitive packages, at the versions installed here (what the tests ran against)
    for name in ("fastapi", "sqlalchemy", "pydantic-core", "starlette", "cryptography"):
        assert pins[name] == metadata.version(name), name
    assert not {"boto3", "botocore", "s3transfer"} & set(pins)
    # the runtime's botocore will import the layer's python-dateutil: keep it within botocore's range
    if any(r.startswith("python-dateutil") for r in metadata.requires("botocore") or []):
        assert any(line.startswith("python-dateutil<") for line in constraints)
    with_boto3 = dict(
        line.split("==")
        for line in bundling.pinned_constraints(
            bundling.runtime_requirements(include_boto3=True), include_boto3=True
        )
        if "==" in line
    )
    assert with_boto3["botocore"] == metadata.version("botocore")


def test_pip_targets_lambda_arm64_python_312_wheels_only(tmp_path):
    command = bundling.pip_command(tmp_path, ["fastapi==1.0"], tmp_path / "constraints.txt")
    joined = " ".join(command)
    assert "--only-binary=:all:" in command
    assert "--python-version 3.12" in joined and "--implementation cp" in joined
    assert "--platform manylinux2014_aarch64" in joined and "--platform manylinux_2_28_aarch64" in joined
    assert "x86_64" not in joined
    assert command[-1] == "fastapi==1.0"
    assert f"--target {tmp_path}" in joined
    assert f"--constraint {tmp_path / 'constraints.txt'}" in joined


def test_placeholder_layer_holds_the_opsdeck_package():
    asset = bundling.layer_placeholder()
    assert (asset.path / "python" / "opsdeck" / "__init__.py").is_file()
    assert asset.key.startswith("placeholder-")


def test_the_x86_64_equivalent_differs_only_in_platform_tags(tmp_path):
    arm = bundling.pip_command(tmp_path, ["fastapi==1.0"])
    x86 = bundling.pip_command(tmp_path, ["fastapi==1.0"], architecture="x86_64")
    assert [a.replace("aarch64", "x86_64") for a in arm] == x86
    assert bundling.lambda_markers("x86_64")["platform_machine"] == "x86_64"
    assert bundling.LAMBDA_MARKERS["platform_machine"] == "aarch64"


@pytest.mark.parametrize(
    ("value", "mode"), [(True, "sourceless"), (False, "none"), ("pycache", "pycache"), ("none", "none")]
)
def test_bytecode_modes(value, mode):
    assert bundling.bytecode_mode(value) == mode


def test_bytecode_mode_rejects_unknown_values():
    with pytest.raises(ValueError, match="bytecode mode"):
        bundling.bytecode_mode("sometimes")


@pytest.mark.skipif(not bundling.bytecode_supported(), reason="bytecode is only built by Python 3.12")
def test_sourceless_tree_imports_from_legacy_pyc_keeps_listed_sources(tmp_path, monkeypatch):
    root = tmp_path / "python"
    files = {
        "smokepkg/__init__.py": "from .mod import answer\n",
        "smokepkg/mod.py": "def answer():\n    return 42\n",
        "smokepkg/__pycache__/mod.cpython-312.pyc": "stale",
        "smokepkg/reads_itself.py": "import inspect, sys\nSOURCE = inspect.getsource(sys.modules[__name__])",
        "smokepkg/templates/env.py": "${template}\n",
        "smokepkg/py2_only.py": "print 'hello'\n",
        "smokepkg-1.0.dist-info/METADATA": "Name: smokepkg\nVersion: 1.0\n",
        "smokepkg/data.json": "{}",
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    keep = ("smokepkg/reads_itself.py", "smokepkg/templates/")
    assert bundling.make_sourceless(root, keep=keep) == 2  # __init__ and mod
    present = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert present == [
        "smokepkg-1.0.dist-info/METADATA",
        "smokepkg/__init__.pyc",
        "smokepkg/data.json",
        "smokepkg/mod.pyc",
        "smokepkg/py2_only.py",  # does not compile: left alone (it could not be imported anyway)
        "smokepkg/reads_itself.py",
        "smokepkg/templates/env.py",
    ]
    pyc = (root / "smokepkg/mod.pyc").read_bytes()
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # unchecked-hash: zip timestamps are irrelevant

    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    try:
        module = importlib.import_module("smokepkg.mod")
        assert isinstance(module.__spec__.loader, importlib.machinery.SourcelessFileLoader)
        assert module.answer() == 42
        # tracebacks name the file where Lambda mounts the layer
        assert module.answer.__code__.co_filename == "/opt/python/smokepkg/mod.py"
        kept = importlib.import_module("smokepkg.reads_itself")
        assert "inspect.getsource" in kept.SOURCE
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "smokepkg"]:
            del sys.modules[name]


def test_keep_source_entries_are_explained():
    assert bundling.KEEP_SOURCE
    for path, reason in bundling.KEEP_SOURCE.items():
        assert path.endswith((".py", "/")) and not path.startswith("/"), path
        assert len(reason) > 20, path


def test_a_synth_without_python_312_warns_that_the_layer_has_no_bytecode(monkeypatch):
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Annotations, Match

    from infra_cdk.config import DeployConfig
    from infra_cdk.layer import Layer

    monkeypatch.setattr(bundling, "bytecode_supported", lambda: False)
    monkeypatch.setattr(bundling, "build_layer", lambda **_: bundling.layer_placeholder())
    stack = Stack(App(), "LayerOnly")
    Layer(stack, "Layer", config=DeployConfig.from_context({}.get))
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("ships sources only"))


def test_the_xray_sdk_ships_only_when_a_function_traces():
    """A catalog entry with tracer=True needs aws-xray-sdk in the layer (the Powertools Tracer)."""
    plain = bundling.runtime_requirements()
    traced = bundling.runtime_requirements(tracing=True)
    assert not any(r.startswith("aws-xray-sdk") for r in plain)
    assert [r for r in traced if r not in plain] == [r for r in traced if r.startswith("aws-xray-sdk")]
    assert any(r.startswith("aws-xray-sdk") for r in traced)


def test_unused_files_are_explained_and_each_matches_the_installed_dependencies():
    """The layer is pip-installed at the versions installed here: a pattern that matches nothing
    here (a file renamed upstream) would silently stop saving its bytes."""
    site = Path(metadata.distribution("fastapi").locate_file(""))
    for pattern, reason in bundling.UNUSED_FILES.items():
        assert len(reason) > 20, pattern
        assert next(iter(site.glob(pattern.rstrip("/"))), None) is not None, pattern


def test_remove_unused_deletes_only_what_is_listed(tmp_path):
    def write(relative: str, size: int = 10) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        return path

    ui = "aws_lambda_powertools/event_handler/openapi/swagger_ui"
    kept = [write(f"{ui}/html.py"), write("fastapi_offline/static/swagger-ui-bundle.js"), write("pkg/mod.py")]
    gone = [
        write(f"{ui}/swagger-ui-bundle.min.js", 100),
        write(f"{ui}/swagger-ui.min.css", 20),
        write("fastapi_offline/static/redoc.standalone.js", 50),
        write("pkg/mod.pyi", 5),
        write("pkg/sub/deep.pyi", 5),
        write("pkg-1.0.dist-info/sboms/pkg.cyclonedx.json", 7),
    ]
    removed = bundling.remove_unused(tmp_path)
    assert all(p.exists() for p in kept)
    assert not any(p.exists() for p in gone)
    assert sum(removed.values()) == 187
    assert (tmp_path / "pkg-1.0.dist-info").is_dir()
