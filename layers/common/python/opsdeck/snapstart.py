"""Lambda SnapStart: what is warmed before the snapshot, and renewed after each restore.

With SnapStart (``Function.snap_start``, docs/deploy.md) Lambda initialises a function once,
snapshots the memory, and starts every new container from that snapshot — possibly many at once.
Anything unique per container must therefore be made *after* the restore, never inherited:

**After restore** (``renew``), for the layer's own state, each step only if its module was
loaded: the global ``random`` generator is reseeded (restored copies would draw the same
numbers) and each retrying HTTP client's jitter generator too; the SQLAlchemy engines are
disposed (connections), with the IAM tokens and the credentials they were signed with
(``opsdeck.dbauth``); the Redis client, the boto3 clients (and their credentials), the JWKS
client and verified tokens, and Powertools' cached secret values are forgotten; every httpx
client made by ``opsdeck.http.make_client`` gets a new transport (so no socket is shared),
the client object itself staying valid for whoever holds it. Capability code adds its own with
``@after_restore``.

**Before the snapshot** (``warm``): what is identical in every copy and safe to share — the
platform settings parsed from the environment, the OpenAPI document of each FastAPI app made by
``opsdeck.api.create_app`` (its first request would otherwise build it), and whatever
capability code registers with ``@before_snapshot``. No connection is opened.

``install()`` registers both with the runtime's ``snapshot_restore_py`` (present in Lambda's
Python 3.12+ runtime); elsewhere — locally, in tests, a function without SnapStart — it is a
no-op, and the hooks are plain functions tests can call (``simulate_restore``).
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from typing import Any

_before: list[Callable[[], Any]] = []
_after: list[Callable[[], Any]] = []
_installed = False


def before_snapshot(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn`` to run once before the snapshot is taken (decorator)."""
    _before.append(fn)
    return fn


def after_restore(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn`` to run after every restore, after the layer's own renewal (decorator)."""
    _after.append(fn)
    return fn


def warm() -> None:
    """The before-snapshot hook: safe, shared initialisation."""
    from .settings import platform

    platform()
    for fn in list(_before):
        fn()


def renew() -> None:
    """The after-restore hook: nothing unique per container survives the restore."""
    random.seed()  # from os.urandom: every restored copy draws its own numbers
    modules = sys.modules
    if "opsdeck.http" in modules:
        modules["opsdeck.http"].renew_clients()
    if "opsdeck.db" in modules:
        modules["opsdeck.db"].reset()  # engines, IAM tokens and their credentials
    elif "opsdeck.dbauth" in modules:
        modules["opsdeck.dbauth"].reset()
    if "opsdeck.cache" in modules:
        modules["opsdeck.cache"].reset()
    if "opsdeck.aws" in modules:
        modules["opsdeck.aws"].reset()
    if "opsdeck.auth" in modules:
        modules["opsdeck.auth"].reset()
    if "aws_lambda_powertools.utilities.parameters" in modules:
        modules["aws_lambda_powertools.utilities.parameters"].clear_caches()
    for fn in list(_after):
        fn()


def simulate_restore() -> None:
    """What Lambda does around a snapshot, in this process: warm, then renew (tests, local)."""
    warm()
    renew()


def enabled() -> bool:
    """Lambda marks a SnapStart initialisation with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def install() -> bool:
    """Register ``warm``/``renew`` with the runtime (once); False where there is no runtime hook."""
    global _installed
    if _installed:
        return True
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(warm)
    register_after_restore(renew)
    _installed = True
    return True
