"""Alembic upgrades, shared by ``opsdeck db upgrade`` and the deploy-time migration function.

One PostgreSQL schema per capability, one Alembic branch per capability (label = the
capability), all upgraded together to ``heads``. Upgrades hold a PostgreSQL advisory lock,
so two deploys (or a deploy and a laptop) never interleave.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, Unavailable

MIGRATION_LOCK_ID = 0x0D5DEC  # pg_advisory_lock key held while migrating


def script_location() -> Path:
    """Where the Alembic scripts are: ``OPSDECK_MIGRATIONS_DIR``, the Lambda task root, or the repo."""
    candidates = [
        os.environ.get("OPSDECK_MIGRATIONS_DIR"),
        os.environ.get("LAMBDA_TASK_ROOT") and os.path.join(os.environ["LAMBDA_TASK_ROOT"], "migrations"),
        str(Path(__file__).resolve().parents[3] / "migrations"),
        str(Path.cwd() / "migrations"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "env.py").is_file():
            return Path(candidate)
    raise ConfigError("migrations not found (set OPSDECK_MIGRATIONS_DIR)")


def _config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("recursive_version_locations", "true")
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str | None = None, target: str = "heads") -> list[str]:
    """Upgrade the database at ``url`` (default: the configured one); returns the new heads."""
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    from .db import database_url, first_line, normalize_url

    url = normalize_url(url) if url else database_url()
    try:
        command.upgrade(_config(url), target)
    except DBAPIError as exc:
        raise Unavailable(f"database unavailable: {first_line(exc)}") from None
    return current(url)


def current(url: str | None = None) -> list[str]:
    """Revisions the database is at (one per capability branch)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from .db import create_engine, database_url, first_line, normalize_url

    url = normalize_url(url) if url else database_url()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar()
            if exists is None:
                return []
            return sorted(conn.execute(text("SELECT version_num FROM public.alembic_version")).scalars())
    except DBAPIError as exc:
        raise Unavailable(f"database unavailable: {first_line(exc)}") from None
    finally:
        engine.dispose()


def heads() -> list[str]:
    """Revisions the scripts lead to."""
    from alembic.script import ScriptDirectory

    return sorted(ScriptDirectory.from_config(_config("")).get_heads())
