"""Errors of the local cloud: each one line naming what is wrong (the CLI prints it as is)."""

from __future__ import annotations

from opsdeck.errors import OpsdeckError


class LocalCloudError(OpsdeckError):
    """The local cloud cannot do what was asked (bad name, port in use, not running, …)."""

    status, slug, title = 500, "local-cloud", "Local cloud error"


class UnsupportedFeature(LocalCloudError):
    """The catalog uses something the emulation does not implement: refused at start."""

    slug = "local-cloud-unsupported"
