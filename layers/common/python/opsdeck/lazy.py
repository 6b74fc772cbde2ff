"""Deferred imports for cold-start-sensitive modules.

    from opsdeck.lazy import lazy_import
    repository = lazy_import("functions.backoffice.repository")  # imported on first attribute access

An HTTP function's module is imported during the Lambda init phase; its repository (and with
it SQLAlchemy, ~200 ms) is only needed by routes that reach the database.

The proxy imports through ``importlib.import_module``, which holds the import system's
per-module lock, so concurrent first uses (the local cloud runs invocations in parallel
threads) all see the fully initialised module. The standard library's ``LazyLoader`` is
not thread-safe before Python 3.12.3/3.13: a second thread could see a half-run module.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from types import ModuleType
from typing import Any

_proxies: list[LazyModule] = []
_registry_lock = threading.Lock()


class LazyModule:
    """Stands in for a module until an attribute is read, then forwards to it."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:  # only called for names not found on the proxy
        return getattr(_resolve(self), attribute)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def _resolve(proxy: LazyModule) -> ModuleType:
    module = proxy._module
    if module is None:
        module = importlib.import_module(proxy._name)
        proxy._module = module
    return module


def lazy_import(name: str) -> Any:
    """The module ``name``, imported on first attribute access (no import now).

    The module must exist: a typo is reported at once, not at the first request.
    """
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    proxy = LazyModule(name)
    with _registry_lock:
        _proxies.append(proxy)
    return proxy


def load_all() -> None:
    """Import every module deferred so far (benchmarks: what a first invocation adds)."""
    with _registry_lock:
        pending = list(_proxies)
    for proxy in pending:
        _resolve(proxy)
