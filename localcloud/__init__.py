"""The Docker-free local runtime of opsdeck: the catalog running on one machine, faithful to AWS.

``from localcloud import LocalCloud`` (contract A, docs/localcloud.md). The package is
imported lazily: ``localcloud.events`` and the CLI do not pay for the emulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.errors import LocalCloudError, UnsupportedFeature
    from localcloud.runtime import InvocationError

__all__ = ["InvocationError", "LocalCloud", "LocalCloudError", "UnsupportedFeature"]


def __getattr__(name: str) -> Any:
    if name == "LocalCloud":
        from localcloud.cloud import LocalCloud

        return LocalCloud
    if name in ("LocalCloudError", "UnsupportedFeature"):
        from localcloud import errors

        return getattr(errors, name)
    if name == "InvocationError":
        from localcloud.runtime import InvocationError

        return InvocationError
    raise AttributeError(f"module 'localcloud' has no attribute {name!r}")
