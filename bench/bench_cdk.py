"""CDK stack: synth time, template size, Lambda asset sizes (``python -m bench cdk``).

* ``synth_s``: ``python -m infra_cdk -c bundle=false`` in a fresh process — what a CI synth
  costs without pip (process start, jsii, construct tree, cdk-nag, assembly on disk).
* ``synth_bundled_s``: the same with the real layer; its dependencies come from the ``build/``
  cache (the first run also pays pip: a package registry must be reachable then).
* ``resources``: CloudFormation resources in the template (limit 500).
* Sizes, unzipped as Lambda counts them (limit 250 MB for function + layers; target here:
  layer + largest function < 50 MB) and zipped as uploaded: the default layer (third-party
  packages as sourceless bytecode, no boto3) and what it is made of, and the variants
  ``layerBytecode=pycache``, ``layerBytecode=none`` and ``layerBoto3=true`` for the trade-offs
  documented in infra_cdk/bundling.py.
* ``handler_import_ms``: ``import <handler module>`` in a fresh Lambda-like process (read-only:
  nothing compiled is kept), median of 7 per ``layerBytecode`` mode, the modes taking turns.
  Lambda runs the arm64 layer; this measures the same dependency set built for this machine
  by the same code path (``infra_cdk.layer_check``), so compare the modes, not the absolute
  figures with Lambda's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _synth(*context: str) -> tuple[float, dict]:
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    env.pop("CDK_CONTEXT_JSON", None)
    with tempfile.TemporaryDirectory(prefix="bench-cdk-") as outdir:
        args = [sys.executable, "-m", "infra_cdk", "--outdir", outdir]
        for item in context:
            args += ["-c", item]
        started = time.perf_counter()
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "synth failed"
            )
        manifest = json.loads((Path(outdir) / "manifest.json").read_text())
        stack = next(
            name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"
        )
        template = json.loads((Path(outdir) / f"{stack}.template.json").read_text())
    return elapsed, template


def _zipped(root: Path) -> int:
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(root))
        return handle.tell()


#: the functions whose handler imports are measured, and the ``layerBytecode`` modes compared
IMPORT_FUNCTIONS = ("ops-api", "backoffice-api", "backoffice-consumer")
IMPORT_MODES = ("none", "pycache", "sourceless")
IMPORT_RUNS = 7


def run() -> Iterator[dict]:
    sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]
    from infra_cdk import bundling, layer_check

    elapsed, template = _synth("bundle=false")
    yield {"metric": "synth_s", "value": round(elapsed, 2), "unit": "s", "bundle": False}
    resources = template["Resources"]
    functions = sum(1 for r in resources.values() if r["Type"] == "AWS::Lambda::Function")
    yield {"metric": "resources", "value": len(resources), "unit": "count", "lambda_functions": functions}

    try:
        layer = bundling.build_layer()  # fills the cache the bundled synth then uses
    except RuntimeError as exc:
        yield {"metric": "layer_unzipped_mb", "value": None, "unit": "MB", "error": str(exc)}
        return
    elapsed, _ = _synth("bundle=true")
    yield {"metric": "synth_bundled_s", "value": round(elapsed, 2), "unit": "s", "bundle": True}

    code = bundling.function_code(bytecode=True)
    layer_size, code_size = bundling.tree_size(layer.path), bundling.tree_size(code.path)
    yield {"metric": "layer_unzipped_mb", "value": round(layer_size / MB, 1), "unit": "MB"}
    yield {"metric": "layer_zipped_mb", "value": round(_zipped(layer.path) / MB, 1), "unit": "MB"}
    yield {"metric": "function_code_unzipped_mb", "value": round(code_size / MB, 2), "unit": "MB"}
    from functions import catalog

    extra_sizes = {}
    for extra in sorted({e for f in catalog.FUNCTIONS for e in f.extras}):
        extra_sizes[extra] = bundling.tree_size(bundling.build_extra_layer(extra).path)
        yield {
            "metric": "extra_layer_unzipped_mb",
            "extra": extra,
            "value": round(extra_sizes[extra] / MB, 2),
            "unit": "MB",
        }
    # what Lambda counts per function: the common layer, its extras' layers and the code
    per_function = {
        f.name: layer_size + code_size + sum(extra_sizes[e] for e in f.extras) for f in catalog.FUNCTIONS
    }
    largest = max(per_function, key=per_function.__getitem__)
    yield {
        "metric": "layer_plus_largest_function_mb",
        "value": round(per_function[largest] / MB, 1),
        "unit": "MB",
        "function": largest,
        "target": "< 50",
        "lambda_limit": 250,
    }
    yield {"metric": "layer_content_mb", "value": layer_check.layer_files(layer.path), "unit": "MB"}
    for variant, options in (
        ("pycache", {"bytecode": "pycache"}),
        ("no_bytecode", {"bytecode": "none"}),
        ("with_boto3", {"include_boto3": True}),
    ):
        try:
            path = bundling.build_layer(**options).path
        except RuntimeError as exc:
            yield {"metric": f"layer_{variant}_unzipped_mb", "value": None, "unit": "MB", "error": str(exc)}
            continue
        yield {
            "metric": f"layer_{variant}_unzipped_mb",
            "value": round(bundling.tree_size(path) / MB, 1),
            "unit": "MB",
            "zipped_mb": round(_zipped(path) / MB, 1),
        }
    yield from _import_times()


def _import_times() -> Iterator[dict]:
    from functions import catalog
    from infra_cdk import bundling, layer_check

    if not bundling.bytecode_supported():
        return
    with tempfile.TemporaryDirectory(prefix="bench-cdk-runtime-") as tmp:
        runtime = layer_check.runtime_stand_in(Path(tmp) / "runtime")
        try:
            envs = {mode: layer_check.variant(mode, runtime)[1] for mode in IMPORT_MODES}
        except RuntimeError as exc:
            yield {"metric": "handler_import_ms", "value": None, "unit": "ms", "error": str(exc)}
            return
        for name in IMPORT_FUNCTIONS:
            function = catalog.by_name()[name]
            own = function.runtime_environment("bench")
            medians = layer_check.import_ms(
                function.module, {mode: {**env, **own} for mode, env in envs.items()}, runs=IMPORT_RUNS
            )
            yield {
                "metric": "handler_import_ms",
                "module": function.module,
                "value": medians["sourceless"],
                "unit": "ms",
                **{f"{mode}_ms": medians[mode] for mode in IMPORT_MODES},
                "runs": IMPORT_RUNS,
                "architecture": layer_check.machine(),
            }
