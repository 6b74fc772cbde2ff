"""Assets: what the function code and the layer contain, and how the layer is built (no network here)."""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata

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
    assert command[-1] == "fastapi==1.0"
    assert f"--target {tmp_path}" in joined
    assert f"--constraint {tmp_path / 'constraints.txt'}" in joined


def test_placeholder_layer_holds_the_opsdeck_package():
    asset = bundling.layer_placeholder()
    assert (asset.path / "python" / "opsdeck" / "__init__.py").is_file()
    assert asset.key.startswith("placeholder-")
