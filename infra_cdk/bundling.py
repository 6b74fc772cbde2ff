"""Lambda code and layer assets, built locally without Docker.

* **Function code** (one asset shared by every function): ``functions/`` + ``migrations/``
  (the deploy-time migration function finds Alembic through ``$LAMBDA_TASK_ROOT/migrations``),
  without development tooling (``simulator.py``, ``demo.py``, ``cli.py``), tests and caches.
* **Layer**: ``python/opsdeck`` (the shared runtime code) + the runtime dependencies of
  ``pyproject.toml`` installed by pip for Lambda's platform (``manylinux_2_{17,28,34}_aarch64``,
  CPython 3.12, wheels only), so no Docker and no compiler are needed. The requirements
  and their whole dependency closure are pinned to the versions installed in the synthesizing
  environment (what the tests ran against), through a pip constraints file.
  - boto3/botocore/s3transfer are left out by default: the python3.12 runtime ships them, and
    they are ~24 MB of the layer's unzipped size (context ``layerBoto3=true`` bundles them).
  - Bytecode: every module is compiled to ``unchecked-hash`` .pyc files. CDK zips assets with a
    fixed 1980 timestamp, so timestamp-checked .pyc would be stale on Lambda and recompiled on
    every cold start (measured: ~1.7 s of import time for FastAPI + pydantic + SQLAlchemy +
    Alembic + Powertools). Costs ~24 MB unzipped; ``layerBytecode=false`` ships sources only.
  - Debug sections of native extensions are stripped when ``llvm-strip`` or
    ``aarch64-linux-gnu-strip`` exists (SQLAlchemy's Cython modules: -8 MB).
* Built trees are cached under ``build/`` by a key over every input (requirements, options,
  sources) and published with an atomic rename, so concurrent synths share them safely; pip
  runs only when requirements change.
* ``bundle=false`` (context) skips pip: the layer asset is ``layers/common`` as it is (the
  ``opsdeck`` package without dependencies) — fast, offline, for tests and template review.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
LAYER_SOURCE = ROOT / "layers" / "common"
OPSDECK_SOURCE = LAYER_SOURCE / "python" / "opsdeck"

#: Directories of the repository that make up the function code asset.
FUNCTION_SOURCES = ("functions", "migrations")
#: Development tooling never deployed (contract B), wherever it appears.
EXCLUDED_FILES = frozenset({"simulator.py", "demo.py", "cli.py", "conftest.py"})
EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "simulator", "demo", ".pytest_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".swp")

PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
#: Provided by the Lambda python3.12 runtime; bundled only with ``layerBoto3=true``.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Bump to invalidate every cached build after changing how builds are made.
BUILD_FORMAT = 3
_KEEP_CACHED = 4


# ----------------------------------------------------------------- requirements


def _distribution_name(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match[1]).lower()


def runtime_requirements(
    pyproject: Path = ROOT / "pyproject.toml", *, include_boto3: bool = False
) -> list[str]:
    """``[project].dependencies`` of pyproject.toml: what the layer ships (boto3 family optional)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [r for r in dependencies if include_boto3 or _distribution_name(r) not in RUNTIME_PROVIDED]


#: PEP 508 marker environment of Lambda's python3.12 arm64 runtime.
LAMBDA_MARKERS = {
    "python_version": PYTHON_VERSION,
    "python_full_version": PYTHON_VERSION + ".0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


def pinned_constraints(requirements: Iterable[str], *, include_boto3: bool = False) -> list[str]:
    """Constraints pinning the layer to the versions this environment has installed.

    Walks the dependency closure of ``requirements`` (markers evaluated for Lambda) through the
    installed distributions' metadata: every installed one is pinned (``name==version``), so the
    layer holds exactly what the test suite ran against. Without boto3 in the layer, botocore's
    own requirements are added too: the runtime's botocore imports the layer's copies of shared
    packages (python-dateutil, jmespath, urllib3), which must stay within its ranges.
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip and pytest
        return []
    pins: dict[str, str] = {}
    extra_lines: list[str] = []
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({**LAMBDA_MARKERS, "extra": extra}):
            continue
        name = _distribution_name(requirement.name)
        if not include_boto3 and name in RUNTIME_PROVIDED:
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        for wanted in requirement.extras | {""}:
            key = f"{name}[{wanted}]"
            if key in pins:
                continue
            pins[key] = version
            for sub in metadata.requires(requirement.name) or []:
                pending.append((Requirement(sub), wanted))
    if not include_boto3:
        try:
            extra_lines = [
                str(Requirement(r)).split(";")[0].strip()
                for r in metadata.requires("botocore") or []
                if not Requirement(r).marker
                or Requirement(r).marker.evaluate({**LAMBDA_MARKERS, "extra": ""})
            ]
        except metadata.PackageNotFoundError:
            extra_lines = []
    versions = {key.split("[")[0]: version for key, version in pins.items()}
    return sorted(f"{name}=={version}" for name, version in versions.items()) + sorted(extra_lines)


def pip_command(target: Path, requirements: Iterable[str], constraints: Path | None = None) -> list[str]:
    """pip, installing wheels for Lambda (arm64, CPython 3.12) into ``target``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-conflicts",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--target",
        str(target),
    ]
    for platform_tag in PLATFORMS:
        command += ["--platform", platform_tag]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return [*command, *requirements]


# ----------------------------------------------------------------- tree helpers


def _included(path: Path) -> bool:
    return not (
        path.name in EXCLUDED_FILES
        or path.suffix in EXCLUDED_SUFFIXES
        or any(part in EXCLUDED_DIRS for part in path.parts)
    )


def source_files(root: Path, relative_to: Path) -> Iterator[Path]:
    """Files under ``root`` that are deployed, sorted, relative to ``relative_to``."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(relative_to)
        if path.is_file() and _included(relative):
            yield relative


def tree_hash(root: Path, files: Iterable[Path] | None = None) -> str:
    """sha256 over relative paths and contents (not timestamps)."""
    digest = hashlib.sha256()
    for relative in files if files is not None else source_files(root, root):
        digest.update(str(relative).encode() + b"\0")
        digest.update((root / relative).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def tree_size(root: Path) -> int:
    """Unzipped size in bytes, as Lambda counts it (every file, hard links counted each time)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def migrations_hash() -> str:
    """Changes whenever a migration script (or the Alembic environment) changes."""
    return tree_hash(ROOT / "migrations")[:32]


def compile_tree(root: Path) -> None:
    """.pyc for every module, valid without source timestamps (``unchecked-hash``).

    Only when the synthesizing interpreter is Lambda's (3.12): other versions write .pyc files
    Lambda would never read.
    """
    if sys.version_info[:2] != tuple(int(p) for p in PYTHON_VERSION.split(".")):
        return
    compileall.compile_dir(
        str(root),
        quiet=2,
        force=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def strip_tool() -> str | None:
    """A strip able to read aarch64 ELF files, if the machine has one."""
    for tool in ("llvm-strip", "aarch64-linux-gnu-strip"):
        found = shutil.which(tool)
        if found:
            return found
    return None


def strip_native(root: Path) -> int:
    """Remove debug sections of native extensions; returns bytes saved (0 without a tool)."""
    tool = strip_tool()
    if tool is None:
        return 0
    saved = 0
    for library in root.rglob("*.so*"):
        if not library.is_file():
            continue
        before = library.stat().st_size
        done = subprocess.run(  # noqa: S603 - a tool found on PATH, a file we just installed
            [tool, "--strip-debug", str(library)], capture_output=True, check=False
        )
        if done.returncode == 0:
            saved += before - library.stat().st_size
    return saved


def _publish(tmp: Path, final: Path) -> Path:
    """Atomically move a finished build into place (another process may have won the race)."""
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    os.utime(final)
    return final


def _prune(kind: str, keep: Path) -> None:
    """Keep the newest few cached builds of ``kind`` (and anything used in the last hour)."""
    builds = sorted(BUILD.glob(f"{kind}-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[_KEEP_CACHED:]:
        if old != keep and time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)


def _tmp(kind: str) -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    path = BUILD / f".tmp-{kind}-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    return path


# ----------------------------------------------------------------- function code


@dataclass(frozen=True)
class Asset:
    path: Path
    #: a hash over every input, used as the CDK asset hash
    key: str


def function_code(*, bytecode: bool = False) -> Asset:
    """The function code asset: ``functions/`` + ``migrations/``, staged under ``build/``."""
    files = [f for source in FUNCTION_SOURCES for f in source_files(ROOT / source, ROOT)]
    key = hashlib.sha256(
        json.dumps([BUILD_FORMAT, bytecode, sys.version_info[:2]]).encode() + tree_hash(ROOT, files).encode()
    ).hexdigest()[:24]
    final = BUILD / f"function-code-{key}"
    if not final.is_dir():
        tmp = _tmp("function-code")
        for relative in files:
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, tmp / relative)
        if bytecode:
            compile_tree(tmp / "functions")
        _publish(tmp, final)
        _prune("function-code", final)
    os.utime(final)
    return Asset(final, key)


# ------------------------------------------------------------------------ layer


def layer_placeholder() -> Asset:
    """``layers/common`` as it is: the opsdeck package, no dependencies (``bundle=false``)."""
    files = list(source_files(LAYER_SOURCE, LAYER_SOURCE))
    return Asset(LAYER_SOURCE, "placeholder-" + tree_hash(LAYER_SOURCE, files)[:24])


def build_layer(*, include_boto3: bool = False, bytecode: bool = True) -> Asset:
    """The layer tree ``python/…`` (dependencies + opsdeck), built once per distinct input."""
    deps = _dependencies(include_boto3=include_boto3, bytecode=bytecode)
    opsdeck_files = list(source_files(OPSDECK_SOURCE, OPSDECK_SOURCE))
    key = hashlib.sha256((deps.key + tree_hash(OPSDECK_SOURCE, opsdeck_files)).encode()).hexdigest()[:24]
    final = BUILD / f"layer-{key}"
    if not final.is_dir():
        tmp = _tmp("layer")
        shutil.copytree(deps.path, tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
        target = tmp / "python" / "opsdeck"
        for relative in opsdeck_files:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(OPSDECK_SOURCE / relative, target / relative)
        if bytecode:
            compile_tree(target)
        _publish(tmp, final)
        _prune("layer", final)
    os.utime(final)
    return Asset(final, key)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _dependencies(*, include_boto3: bool, bytecode: bool) -> Asset:
    requirements = runtime_requirements(include_boto3=include_boto3)
    constraints = pinned_constraints(requirements, include_boto3=include_boto3)
    recipe = {
        "format": BUILD_FORMAT,
        "requirements": requirements,
        "constraints": constraints,
        "platforms": PLATFORMS,
        "python": PYTHON_VERSION,
        "bytecode": bytecode and sys.version_info[:2] == (3, 12),
        "strip": strip_tool() is not None,
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]
    final = BUILD / f"pydeps-{key}"
    if final.is_dir():
        os.utime(final)
        return Asset(final, key)
    tmp = _tmp("pydeps")
    target = tmp / "python"
    constraints_file = tmp / "constraints.txt"
    constraints_file.write_text("".join(line + "\n" for line in constraints))
    try:
        subprocess.run(pip_command(target, requirements, constraints_file), check=True)  # noqa: S603 - our pip
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(
            f"pip could not install the layer's dependencies (exit {exc.returncode}); "
            "a package registry must be reachable for the first bundled synth "
            "(or synthesize with -c bundle=false)"
        ) from None
    constraints_file.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)
    if not include_boto3:  # pulled in transitively? the runtime provides it
        for name in RUNTIME_PROVIDED:
            shutil.rmtree(target / name, ignore_errors=True)
            for info in target.glob(f"{name}-*.dist-info"):
                shutil.rmtree(info, ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    strip_native(target)
    if bytecode:
        compile_tree(target)
    _publish(tmp, final)
    _prune("pydeps", final)
    return Asset(final, key)
