"""What the local cloud runs on: PostgreSQL, Redis, the dev JWT secret, the state file.

* PostgreSQL: ``DATABASE_URL`` (or the ``database_url`` argument) if given, else an
  embedded server (``pgserver``) whose data lives in ``<root>/pg`` so it survives restarts;
  the application database is ``opsdeck`` on it.
* Redis: ``REDIS_URL`` if given, else ``fakeredis://`` (one in-process fake shared by every
  function of the process, see ``opsdeck.cache``).
* ``<root>/jwt-secret``: the HS256 secret of the local dev issuer, generated once (0600),
  so tokens minted in another shell (``opsdeck token``, which reads this file)
  verify here.
* ``<root>/local.json``: where a running ``opsdeck local up`` listens and the environment
  it gives functions (0600; it holds the JWT secret); the CLI's other commands find the
  running cloud through it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from localcloud.errors import LocalCloudError

STATE_FILE = "local.json"
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
APP_DATABASE = "opsdeck"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def jwt_secret(root: Path) -> str:
    path = root / JWT_SECRET_FILE
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return value
    value = secrets.token_urlsafe(48)
    _write_private(path, value + "\n")
    return value


class EmbeddedPostgres:
    """pgserver with its data under ``<root>/pg``; stopped when the last user process exits."""

    def __init__(self, root: Path) -> None:
        import warnings

        datadir = root / "pg"
        datadir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import pgserver
            except ImportError:
                raise LocalCloudError(
                    "no DATABASE_URL and pgserver is not installed (pip install 'opsdeck[local]')"
                ) from None
            try:
                self.server = pgserver.get_server(datadir, cleanup_mode="stop")
            except Exception as exc:
                raise LocalCloudError(f"the embedded PostgreSQL in {datadir} did not start: {exc}") from None
        self.admin_url = self.server.get_uri()
        self.url = self._ensure_database()

    def _ensure_database(self) -> str:
        from urllib.parse import urlsplit, urlunsplit

        import pg8000.native
        from sqlalchemy.engine import make_url

        from opsdeck.db import normalize_url

        u = make_url(normalize_url(self.admin_url))
        conn = pg8000.native.Connection(
            user=u.username or "postgres", database="postgres", unix_sock=u.query["unix_sock"]
        )
        try:
            if not conn.run("SELECT 1 FROM pg_database WHERE datname = :name", name=APP_DATABASE):
                conn.run(f"CREATE DATABASE {APP_DATABASE}")
        finally:
            conn.close()
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + APP_DATABASE, parts.query, ""))

    def close(self) -> None:
        self.server.cleanup()


def write_state(root: Path, state: dict[str, Any]) -> None:
    _write_private(root / STATE_FILE, json.dumps({"pid": os.getpid(), **state}, indent=2) + "\n")


def clear_state(root: Path) -> None:
    path = root / STATE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_state(root: Path) -> dict[str, Any] | None:
    """The running local cloud's state, or None when none runs (a stale file is ignored)."""
    path = root / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return state


# ----------------------------------------------------------------- database roles


def role_password(admin_url: str, capability: str) -> str:
    """The local password of a capability's runtime role: derived from the admin URL (whoever
    knows that already has the whole database), so the local cloud, the test harness and a
    second ``opsdeck local up`` agree without storing anything."""
    import hashlib
    import hmac

    return hmac.new(admin_url.encode(), f"opsdeck-role:{capability}".encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def database_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    from opsdeck.db import normalize_url

    u = make_url(normalize_url(url))
    return u.database or u.username or "postgres"


def role_url(admin_url: str, capability: str) -> str:
    """``admin_url`` logged in as ``capability``'s runtime role (``opsdeck.naming.database_role``)."""
    from sqlalchemy.engine import make_url

    from opsdeck.db import normalize_url
    from opsdeck.naming import database_role

    u = make_url(normalize_url(admin_url))
    role = database_role(database_of(admin_url), capability, "runtime")
    return u.set(username=role, password=role_password(admin_url, capability)).render_as_string(
        hide_password=False
    )


def grant_logins(admin_url: str, capabilities: list[str]) -> list[str]:
    """Set the local passwords of the capabilities' runtime roles that exist (after migrations);
    returns the capabilities whose role does not exist yet."""
    from sqlalchemy import text

    from opsdeck.db import create_engine
    from opsdeck.migrations import set_passwords
    from opsdeck.naming import database_role

    database = database_of(admin_url)
    engine = create_engine(admin_url)
    try:
        with engine.begin() as conn:
            roles = {database_role(database, c, "runtime"): c for c in capabilities}
            existing = set(
                conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": list(roles)})
                .scalars()
                .all()
            )
            set_passwords(conn, {c: role_password(admin_url, c) for r, c in roles.items() if r in existing})
    finally:
        engine.dispose()
    return sorted(c for r, c in roles.items() if r not in existing)
