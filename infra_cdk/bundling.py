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
    they are ~22 MB of the layer's unzipped size (context ``layerBoto3=true`` bundles them).
  - Bytecode (context ``layerBytecode``), because /opt is read-only on Lambda: whatever is not
    shipped compiled is compiled again on every cold start (about twice the import time).
    ``sourceless`` (default): the third-party packages are shipped as bytecode only, one
    legacy-location ``module.pyc`` where ``module.py`` was (Python's ``SourcelessFileLoader``
    imports it; ``compileall -b``), their sources deleted — the layer is smaller than with
    sources alone. Exceptions, with the reason, in ``KEEP_SOURCE``. ``opsdeck/`` (and the
    function code) keep their sources for readable tracebacks, with ``unchecked-hash`` .pyc in
    ``__pycache__``: CDK zips assets with a fixed 1980 timestamp, so timestamp-checked .pyc
    would be stale on Lambda. ``pycache``: every module keeps its source plus such a .pyc
    (+23 MB: above the 50 MB target). ``none``: sources only.
  - Debug sections of native extensions are stripped when ``llvm-strip`` or
    ``aarch64-linux-gnu-strip`` exists (SQLAlchemy's Cython modules: -8 MB).
* **Function extras** (``Function.extras``, pyproject's ``[project.optional-dependencies]``
  groups it names): one more layer per extra, attached only to the functions naming it, holding
  the extra's dependency closure minus what the common layer has (pinned the same way, installed
  with ``--no-deps``, the same bytecode and pruning). graphql-core (product-monitor-graphql) and
  Alembic + Mako (ops-migrate) live there, so no other function's bundle carries them.
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
#: Wheel platforms per architecture. Lambda runs arm64 (aarch64); an x86_64 build is the same
#: layer for this kind of machine, to import and time it off-Lambda (``infra_cdk.layer_check``).
PLATFORMS_BY_ARCHITECTURE = {
    "aarch64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"),
}
ARCHITECTURE = "aarch64"
PLATFORMS = PLATFORMS_BY_ARCHITECTURE[ARCHITECTURE]
#: Where Lambda mounts the layer's ``python/`` directory: file names in sourceless bytecode.
LAYER_MOUNT = "/opt/python"
#: Provided by the Lambda python3.12 runtime; bundled only with ``layerBoto3=true``.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Bump to invalidate every cached build after changing how builds are made.
BUILD_FORMAT = 4
_KEEP_CACHED = 4

#: ``layerBytecode`` values; see the module docstring.
BYTECODE_MODES = ("sourceless", "pycache", "none")
#: Third-party files a sourceless layer keeps as source (+ ``__pycache__`` bytecode), and why.
#: A key ending in "/" covers a directory. Found by reading every use of inspect.getsource*/
#: linecache/``__file__`` in the dependencies; the layer smoke test
#: (``OPSDECK_LAYER_SMOKE=1 pytest tests/infra/test_layer_smoke.py``) catches behaviour changes.
KEEP_SOURCE = {
    "anyio/__init__.py": "anyio's lazy importer parses its own __init__ source (inspect.getsource) "
    "for the names to load lazily; without it anyio imports every submodule eagerly",
    "anyio/abc/__init__.py": "the same lazy importer",
    "alembic/templates/": "project templates that `alembic init` copies: data, not modules",
}

#: Third-party files no opsdeck function ever reads, removed from the layer, and why. Patterns
#: are ``Path.glob`` patterns relative to the layer's ``python/``; every one must match something
#: in a real build (the layer smoke test checks it), so a renamed file cannot silently stay.
UNUSED_FILES = {
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui*": "Powertools' own Swagger UI "
    "assets, for its event handler's docs route; opsdeck's APIs are FastAPI apps and serve "
    "fastapi-offline's copy (opsdeck.api)",
    "fastapi_offline/static/redoc.standalone.js": "ReDoc: opsdeck's app factory serves no ReDoc "
    "page (redoc_url=None), only Swagger UI",
    "**/*.pyi": "type stubs: read by type checkers, never imported",
    "*.dist-info/sboms/": "software bills of materials: for scanners of the built wheel; the "
    "package versions stay in each METADATA",
}


def remove_unused(root: Path, patterns: Iterable[str] = UNUSED_FILES) -> dict[str, int]:
    """Delete what ``UNUSED_FILES`` lists under ``root``; bytes removed per pattern."""
    removed: dict[str, int] = {}
    for pattern in patterns:
        total = 0
        for path in list(root.glob(pattern.rstrip("/"))):
            if path.is_dir() and pattern.endswith("/"):
                total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            elif path.is_file():
                total += path.stat().st_size
                path.unlink()
        removed[pattern] = total
    return removed


# ----------------------------------------------------------------- requirements


def _distribution_name(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match[1]).lower()


def runtime_requirements(
    pyproject: Path = ROOT / "pyproject.toml", *, include_boto3: bool = False, tracing: bool = False
) -> list[str]:
    """``[project].dependencies`` of pyproject.toml: what the layer ships (boto3 family optional;
    the ``tracing`` extra when some function uses the Powertools Tracer)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    dependencies = list(project["dependencies"])
    if tracing:
        dependencies += project["optional-dependencies"]["tracing"]
    return [r for r in dependencies if include_boto3 or _distribution_name(r) not in RUNTIME_PROVIDED]


def extra_requirements(extra: str, pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The requirements of the function extra ``extra`` (an optional-dependencies group)."""
    groups = tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
    if extra not in groups:
        raise ValueError(
            f"function extra {extra!r} is not an optional-dependencies group of {pyproject.name}"
        )
    return list(groups[extra])


def lambda_markers(architecture: str = ARCHITECTURE) -> dict[str, str]:
    """PEP 508 marker environment of Lambda's python3.12 runtime on ``architecture``."""
    return {
        "python_version": PYTHON_VERSION,
        "python_full_version": PYTHON_VERSION + ".0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": architecture,
        "os_name": "posix",
    }


#: PEP 508 marker environment of Lambda's python3.12 arm64 runtime.
LAMBDA_MARKERS = lambda_markers()


def pinned_constraints(
    requirements: Iterable[str], *, include_boto3: bool = False, architecture: str = ARCHITECTURE
) -> list[str]:
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
    markers = lambda_markers(architecture)
    pins: dict[str, str] = {}
    extra_lines: list[str] = []
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({**markers, "extra": extra}):
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
                if not Requirement(r).marker or Requirement(r).marker.evaluate({**markers, "extra": ""})
            ]
        except metadata.PackageNotFoundError:
            extra_lines = []
    versions = {key.split("[")[0]: version for key, version in pins.items()}
    return sorted(f"{name}=={version}" for name, version in versions.items()) + sorted(extra_lines)


def pip_command(
    target: Path,
    requirements: Iterable[str],
    constraints: Path | None = None,
    *,
    architecture: str = ARCHITECTURE,
) -> list[str]:
    """pip, installing wheels for Lambda (arm64 unless told, CPython 3.12) into ``target``."""
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
    for platform_tag in PLATFORMS_BY_ARCHITECTURE[architecture]:
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


def bytecode_supported() -> bool:
    """Bytecode is only built by Lambda's Python (3.12): other versions write .pyc Lambda can't read."""
    return sys.version_info[:2] == tuple(int(p) for p in PYTHON_VERSION.split("."))


def bytecode_mode(value: bool | str) -> str:
    """``sourceless``, ``pycache`` or ``none`` from a mode or a boolean (true = the default)."""
    if value is True:
        return "sourceless"
    if value is False:
        return "none"
    if value not in BYTECODE_MODES:
        raise ValueError(f"bytecode mode {value!r}: one of {', '.join(BYTECODE_MODES)}")
    return value


def compile_tree(root: Path) -> None:
    """.pyc in ``__pycache__`` for every module with a source, valid without source timestamps
    (``unchecked-hash``). Only with Lambda's Python (``bytecode_supported``)."""
    if not bytecode_supported():
        return
    compileall.compile_dir(
        str(root),
        quiet=2,
        force=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def _kept(relative: str, keep: Iterable[str]) -> bool:
    return any(relative == k or (k.endswith("/") and relative.startswith(k)) for k in keep)


def make_sourceless(root: Path, *, keep: Iterable[str] = KEEP_SOURCE, mount: str = LAYER_MOUNT) -> int:
    """Replace every module under ``root`` by its bytecode at the legacy location (``module.py`` →
    ``module.pyc``, as ``compileall -b`` does), except the ``keep`` paths (relative, "/" = a
    directory); returns the number of modules converted.

    The bytecode records ``<mount>/<relative path>.py`` as its file name, so tracebacks on Lambda
    name the real package and line (without the source line). ``__pycache__`` directories are
    removed. A file that does not compile (not a Python 3.12 module) keeps its source.
    """
    if not bytecode_supported():
        raise RuntimeError(f"sourceless bytecode needs Python {PYTHON_VERSION}, not {sys.version}")
    keep = tuple(keep)
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    converted = 0
    for source in sorted(root.rglob("*.py")):
        relative = source.relative_to(root).as_posix()
        if _kept(relative, keep) or not source.is_file():
            continue
        try:
            py_compile.compile(
                str(source),
                cfile=str(source.with_suffix(".pyc")),
                dfile=f"{mount}/{relative}",
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            continue
        source.unlink()
        converted += 1
    return converted


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
    """The function code asset: ``functions/`` + ``migrations/``, staged under ``build/``; with
    ``bytecode``, ``functions/`` also gets ``__pycache__`` .pyc (sources stay: our tracebacks)."""
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


def build_layer(
    *,
    include_boto3: bool = False,
    bytecode: bool | str = "sourceless",
    architecture: str = ARCHITECTURE,
    tracing: bool = False,
) -> Asset:
    """The layer tree ``python/…`` (dependencies + opsdeck), built once per distinct input.

    ``bytecode``: a ``BYTECODE_MODES`` value (``True`` = ``sourceless``, ``False`` = ``none``);
    it applies to the dependencies, ``opsdeck/`` always keeps its sources (+ ``__pycache__``
    unless ``none``). ``architecture``: ``aarch64`` deploys; ``x86_64`` is the same layer built
    for this kind of machine (to check it off-Lambda), through exactly the same steps.
    """
    mode = bytecode_mode(bytecode)
    deps = _dependencies(
        include_boto3=include_boto3, bytecode=mode, architecture=architecture, tracing=tracing
    )
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
        if mode != "none":
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


def extra_pins(
    extra: str, *, include_boto3: bool = False, architecture: str = ARCHITECTURE, tracing: bool = False
) -> list[str]:
    """``name==version`` of every distribution the extra needs that the common layer lacks."""
    common = pinned_constraints(
        runtime_requirements(include_boto3=include_boto3, tracing=tracing),
        include_boto3=include_boto3,
        architecture=architecture,
    )
    have = {line.split("==")[0] for line in common if "==" in line}
    wanted = pinned_constraints(
        extra_requirements(extra), include_boto3=include_boto3, architecture=architecture
    )
    return [line for line in wanted if "==" in line and line.split("==")[0] not in have]


def build_extra_layer(
    extra: str,
    *,
    include_boto3: bool = False,
    bytecode: bool | str = "sourceless",
    architecture: str = ARCHITECTURE,
    tracing: bool = False,
) -> Asset:
    """The layer tree ``python/…`` of function extra ``extra`` (see the module docstring)."""
    pins = extra_pins(extra, include_boto3=include_boto3, architecture=architecture, tracing=tracing)
    if not pins:
        raise ValueError(f"function extra {extra!r} adds nothing the common layer lacks")
    return _dependencies(
        include_boto3=include_boto3,
        bytecode=bytecode_mode(bytecode),
        architecture=architecture,
        kind=f"extra-{extra}",
        requirements=pins,
        no_deps=True,
    )


def extra_placeholder(extra: str) -> Asset:
    """An extra's layer for ``bundle=false``: no dependencies, one file naming it."""
    final = BUILD / f"extra-placeholder-{extra}"
    marker = final / "python" / f"opsdeck-extra-{extra}.txt"
    if not marker.is_file():
        tmp = _tmp(f"extra-placeholder-{extra}")
        (tmp / "python").mkdir(parents=True, exist_ok=True)
        (tmp / "python" / marker.name).write_text(f"function extra {extra}: built with bundle=false\n")
        if final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _publish(tmp, final)
    return Asset(final, f"extra-placeholder-{extra}-1")


def _dependencies(
    *,
    include_boto3: bool,
    bytecode: str,
    architecture: str,
    tracing: bool = False,
    kind: str = "pydeps",
    requirements: list[str] | None = None,
    no_deps: bool = False,
) -> Asset:
    """Install ``requirements`` (default: the common layer's) for Lambda, pruned and compiled.
    ``no_deps``: the requirements are already the exact pinned closure to install."""
    if requirements is None:
        requirements = runtime_requirements(include_boto3=include_boto3, tracing=tracing)
    constraints = (
        []
        if no_deps
        else pinned_constraints(requirements, include_boto3=include_boto3, architecture=architecture)
    )
    if not bytecode_supported():
        bytecode = "none"
    recipe = {
        "format": BUILD_FORMAT,
        "kind": kind,
        "no_deps": no_deps,
        "requirements": requirements,
        "constraints": constraints,
        "platforms": PLATFORMS_BY_ARCHITECTURE[architecture],
        "python": PYTHON_VERSION,
        "bytecode": bytecode,
        "keep_source": sorted(KEEP_SOURCE) if bytecode == "sourceless" else [],
        "unused": sorted(UNUSED_FILES),
        "strip": strip_tool() is not None,
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]
    final = BUILD / f"{kind}-{key}"
    if final.is_dir():
        os.utime(final)
        return Asset(final, key)
    tmp = _tmp(kind)
    target = tmp / "python"
    constraints_file = tmp / "constraints.txt"
    constraints_file.write_text("".join(line + "\n" for line in constraints))
    command = pip_command(target, requirements, constraints_file, architecture=architecture)
    if no_deps:
        command.insert(command.index("install") + 1, "--no-deps")
    try:
        subprocess.run(command, check=True)  # noqa: S603 - our pip
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
    remove_unused(target)
    strip_native(target)
    if bytecode == "sourceless":
        make_sourceless(target)
    if bytecode != "none":
        compile_tree(target)  # sourceless: only the KEEP_SOURCE modules still have a source
    _publish(tmp, final)
    _prune(kind, final)
    return Asset(final, key)
