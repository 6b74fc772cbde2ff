"""The shared Lambda layer: ``opsdeck`` + the runtime dependencies of pyproject.toml; and one
layer per function extra (``Function.extras``), attached only to the functions naming it.

Built by ``bundling.build_layer`` (pip for manylinux aarch64 / CPython 3.12, no Docker; by
default the dependencies as bytecode only, ``layerBytecode``), or — with context
``bundle=false`` — a placeholder holding only the ``opsdeck`` sources, so that tests and
template reviews synthesize in seconds without a package registry.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from aws_cdk import Annotations, AssetHashType
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import bundling
from .config import DeployConfig

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


class Layer(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeployConfig,
        tracing: bool = False,
        extras: Iterable[str] = (),
    ) -> None:
        super().__init__(scope, id)
        if config.bundle:
            self.asset = bundling.build_layer(
                include_boto3=config.layer_boto3, bytecode=config.layer_bytecode, tracing=tracing
            )
            description = "opsdeck shared runtime: opsdeck + dependencies (pyproject.toml)"
            if config.layer_bytecode != "none" and not bundling.bytecode_supported():
                Annotations.of(self).add_warning_v2(
                    "opsdeck:LayerWithoutBytecode",
                    f"synthesized with Python {sys.version_info[0]}.{sys.version_info[1]}, not "
                    f"{bundling.PYTHON_VERSION}: the layer ships sources only (slower cold starts); "
                    f"synthesize with Python {bundling.PYTHON_VERSION} for bytecode",
                )
        else:
            self.asset = bundling.layer_placeholder()
            description = (
                "opsdeck shared runtime (placeholder: synthesized with bundle=false, no dependencies)"
            )
        self.layer = lambda_.LayerVersion(
            self,
            "Common",
            code=lambda_.Code.from_asset(
                str(self.asset.path),
                asset_hash=self.asset.key,
                asset_hash_type=AssetHashType.CUSTOM,
                exclude=["**/__pycache__", "**/*.pyc"] if not config.bundle else None,
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )
        #: function extra → its layer
        self.extras: dict[str, lambda_.LayerVersion] = {}
        for extra in sorted(set(extras)):
            if config.bundle:
                asset = bundling.build_extra_layer(
                    extra, include_boto3=config.layer_boto3, bytecode=config.layer_bytecode, tracing=tracing
                )
                what = f"opsdeck function extra {extra!r}: pyproject.toml's optional dependencies {extra!r}"
            else:
                asset = bundling.extra_placeholder(extra)
                what = f"opsdeck function extra {extra!r} (placeholder: synthesized with bundle=false)"
            self.extras[extra] = lambda_.LayerVersion(
                self,
                f"Extra-{extra}",
                code=lambda_.Code.from_asset(
                    str(asset.path), asset_hash=asset.key, asset_hash_type=AssetHashType.CUSTOM
                ),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=what,
            )
