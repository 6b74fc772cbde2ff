"""The one shared Lambda layer: ``opsdeck`` + the runtime dependencies of pyproject.toml.

Built by ``bundling.build_layer`` (pip for manylinux aarch64 / CPython 3.12, no Docker), or —
with context ``bundle=false`` — a placeholder holding only the ``opsdeck`` sources, so that tests
and template reviews synthesize in seconds without a package registry.
"""

from __future__ import annotations

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import bundling
from .config import DeployConfig

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


class Layer(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, id)
        if config.bundle:
            self.asset = bundling.build_layer(
                include_boto3=config.layer_boto3, bytecode=config.layer_bytecode
            )
            description = "opsdeck shared runtime: opsdeck + dependencies (pyproject.toml)"
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
