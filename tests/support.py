"""Helpers shared by tests: Lambda contexts, sample events, environment patching."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def reset_runtime() -> None:
    """Forget every lazily created client and cached setting of the layer."""
    from aws_lambda_powertools.utilities import parameters

    from opsdeck import auth, aws, cache, db, settings

    settings.platform.cache_clear()
    parameters.clear_caches()
    db.reset()
    cache.reset()
    aws.reset()
    auth.reset()


class LambdaContext:
    """What Lambda passes as ``context``: enough for Powertools and Mangum."""

    def __init__(self, function_name: str = "test-function", timeout_s: int = 10) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/22/[$LATEST]test"
        self._deadline_ms = timeout_s * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._deadline_ms


def load_event(relpath: str) -> dict[str, Any]:
    """A sample event from ``events/`` (the same files users invoke)."""
    return json.loads((EVENTS / relpath).read_text())


def set_env(values: dict[str, str | None]) -> None:
    """Set (or, with None, unset) environment variables (the caller resets what cached them)."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Temporarily set (or, with None, unset) environment variables; cached settings are reset."""
    saved = {k: os.environ.get(k) for k in values}
    set_env(values)
    reset_runtime()
    try:
        yield
    finally:
        set_env(saved)
        reset_runtime()


@contextlib.contextmanager
def as_admin(conn: Any) -> Iterator[Any]:
    """Inside the ``db`` fixture's transaction, act as the session's admin user for a moment
    (test set-up DDL a runtime role may not do), then as the test's role again."""
    from sqlalchemy import text

    role = conn.execute(text("SELECT current_user")).scalar()
    conn.execute(text("RESET ROLE"))
    try:
        yield conn
    finally:
        conn.execute(text('SET LOCAL ROLE "' + role.replace('"', '""') + '"'))
