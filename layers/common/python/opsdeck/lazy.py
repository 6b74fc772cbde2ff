"""Deferred imports for cold-start-sensitive modules.

    from opsdeck.lazy import lazy_import
    repository = lazy_import("functions.backoffice.repository")  # loads on first attribute access

An HTTP function's module is imported during the Lambda init phase; its repository
(and with it SQLAlchemy, ~200 ms) is only needed by routes that reach the database.
Uses the standard library's ``importlib.util.LazyLoader``.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, executed on first attribute access (at once if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
