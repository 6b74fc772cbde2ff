"""Run a built layer off-Lambda: import it, time it, in a process laid out like Lambda's.

Lambda's python3.12 runtime puts the function code (``/var/task``) first on ``sys.path``, then
the layer (``/opt/python``), then the runtime's own packages (``/var/runtime``: boto3, botocore,
s3transfer and their dependencies), then the standard library; ``/var/task`` and ``/opt`` are
read-only, so bytecode compiled during an import is never kept. ``lambda_env`` reproduces that
for a layer built for *this* machine (``bundling.build_layer(architecture=machine())`` — the same
steps as the arm64 layer, other wheels): ``python -S`` (no site-packages, no ``.pth`` finders),
``PYTHONPATH`` = code : layer : a stand-in for ``/var/runtime`` (links to this environment's
boto3 family), ``PYTHONDONTWRITEBYTECODE=1``.

Used by the layer smoke test (``tests/infra/test_layer_smoke.py``, ``OPSDECK_LAYER_SMOKE=1``)
and ``python -m bench cdk`` (import time per ``layerBytecode`` mode).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from . import bundling

#: Packages of Lambda's /var/runtime the layer does not ship (boto3 and its closure).
RUNTIME_ROOTS = ("boto3",)


def machine() -> str:
    """This machine's architecture as ``bundling.PLATFORMS_BY_ARCHITECTURE`` names it."""
    name = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def _closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    from packaging.requirements import Requirement

    markers = {**bundling.lambda_markers(machine()), "extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = bundling._distribution_name(pending.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if not requirement.marker or requirement.marker.evaluate(markers):
                pending.append(requirement.name)
    return list(seen.values())


def runtime_stand_in(directory: Path) -> Path:
    """``directory`` filled with links to this environment's boto3 family (top-level packages and
    their ``.dist-info``), like Lambda's ``/var/runtime``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for dist in _closure(RUNTIME_ROOTS):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops - {"__pycache__", "bin"}):
            source = Path(str(dist.locate_file(top)))
            link = directory / top
            if source.exists() and not link.exists():
                link.symlink_to(source, target_is_directory=source.is_dir())
    return directory


def lambda_env(
    layer: Path,
    code: Path,
    runtime: Path,
    extra: dict[str, str] | None = None,
    extra_layers: Iterable[Path] = (),
) -> dict[str, str]:
    """Environment of a Lambda-like ``python -S`` process: ``layer`` is the layer asset (holding
    ``python/``), ``code`` the function code asset, ``runtime`` from ``runtime_stand_in``;
    ``extra_layers``: the function's extras layers (Lambda extracts every layer into ``/opt``,
    so they share ``/opt/python``; here each is its own directory after the common one)."""
    layers = [str(layer / "python"), *(str(p / "python") for p in extra_layers)]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(code), *layers, str(runtime)]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only
        "PYTHONHASHSEED": "0",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    env.update(extra or {})
    return env


def variant(
    bytecode: str, runtime: Path, extra: dict[str, str] | None = None, extras: Iterable[str] = ()
) -> tuple[bundling.Asset, dict[str, str]]:
    """The layer for this machine with ``bytecode`` (a ``bundling.BYTECODE_MODES`` value) and
    the environment of a Lambda-like process using it with the function code as the stack
    ships it for that mode (``__pycache__`` bytecode unless ``none``), plus the layers of the
    function ``extras`` built the same way."""
    layer = bundling.build_layer(bytecode=bytecode, architecture=machine())
    code = bundling.function_code(bytecode=bytecode != "none")
    extra_layers = [
        bundling.build_extra_layer(e, bytecode=bytecode, architecture=machine()).path for e in extras
    ]
    return layer, lambda_env(layer.path, code.path, runtime, extra, extra_layers)


def run(code: str, env: dict[str, str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -S -c code`` in ``env`` (this interpreter: the Python the layer was built for),
    in the function code directory as Lambda does (``-c`` puts the working directory first on
    ``sys.path``, as Lambda puts ``/var/task``)."""
    return subprocess.run(  # noqa: S603 - this interpreter, our code
        [sys.executable, "-S", "-c", code],
        env=env,
        cwd=env["LAMBDA_TASK_ROOT"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_IMPORT_PROBE = """\
import time
t = time.perf_counter()
import {module}
print((time.perf_counter() - t) * 1000)
"""


def import_ms(module: str, envs: dict[str, dict[str, str]], runs: int = 7) -> dict[str, float]:
    """Median wall time (ms) of ``import module`` in ``runs`` fresh processes per environment,
    the environments taking turns (so that a busy moment of the machine hits them alike), after
    one discarded round that warms the OS file cache. Nothing is written back
    (PYTHONDONTWRITEBYTECODE): every process pays what a cold start pays."""
    samples: dict[str, list[float]] = {name: [] for name in envs}
    for round_ in range(runs + 1):
        for name, env in envs.items():
            done = run(_IMPORT_PROBE.format(module=module), env)
            if done.returncode != 0:
                raise RuntimeError(f"{name}: import {module} failed: {done.stderr.strip().splitlines()[-1:]}")
            if round_:
                samples[name].append(float(done.stdout.strip().splitlines()[-1]))
    return {name: round(statistics.median(values), 1) for name, values in samples.items()}


def layer_files(layer: Path) -> dict[str, float]:
    """MB by kind of file under the layer's ``python/``: sources, bytecode, native, other."""
    sizes = {"py": 0, "pyc": 0, "native": 0, "other": 0}
    for path in (layer / "python").rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        kind = (
            "py"
            if path.suffix == ".py"
            else "pyc"
            if path.suffix == ".pyc"
            else "native"
            if ".so" in path.suffixes
            else "other"
        )
        sizes[kind] += path.stat().st_size
    return {kind: round(size / 1024 / 1024, 1) for kind, size in sizes.items()}
