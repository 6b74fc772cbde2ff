"""Shared test harness.

* PostgreSQL: ``TEST_DATABASE_URL`` (a throwaway database is created on that server for the
  session and dropped at the end), else an embedded server from ``pgserver``.
* Redis: ``TEST_REDIS_URL`` (database 15, flushed per test), else the in-process fake.
* AWS: moto; no test ever reaches AWS (fake credentials, no endpoint).
* Each database test runs inside a transaction that is rolled back (``db`` fixture);
  tests that need real commits across threads use ``committed_db`` (tables truncated).
* Database roles, as on AWS: a test under ``tests/<kind>/<capability>/`` (or marked
  ``@pytest.mark.capability("<capability>")``) runs as that capability's **runtime role** —
  ``db`` does ``SET LOCAL ROLE``, ``committed_db`` and the functions of ``local_cloud`` log in as
  it — so a grant the migrations forgot fails here, not in AWS. Other tests (the layer's own)
  run as the session's admin user. ``capability`` is the fixture that says which.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import ROOT, LambdaContext, reset_runtime

# Never talk to real AWS, never emit EMF noise unless a test asks for it.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STAGE": "test",
        "POWERTOOLS_SERVICE_NAME": "opsdeck",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "DATABASE_URL", "REDIS_URL", "DATABASE_SECRET_ID"):
    os.environ.pop(_var, None)


# --------------------------------------------------------------------- PostgreSQL


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    from opsdeck.db import normalize_url

    given = os.environ.get("TEST_DATABASE_URL")
    server = None
    if given:
        admin_url = given
    else:
        import pgserver

        datadir = tempfile.mkdtemp(prefix="opsdeck-pg-")
        server = pgserver.get_server(datadir, cleanup_mode="delete")
        admin_url = server.get_uri()
    name = f"opsdeck_test_{uuid.uuid4().hex[:10]}"
    admin = _native(normalize_url(admin_url))
    admin.run(f"CREATE DATABASE {name}")
    admin.close()
    url = normalize_url(_with_database(normalize_url(admin_url), name))

    from localcloud.services import role_password
    from opsdeck.migrations import catalog_schemas, upgrade

    upgrade(url, passwords={cap: role_password(url, cap) for cap in catalog_schemas()})
    os.environ["DATABASE_URL"] = url
    reset_runtime()
    try:
        yield url
    finally:
        from opsdeck import db

        db.reset()
        os.environ.pop("DATABASE_URL", None)
        admin = _native(normalize_url(admin_url))
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _drop_roles(admin, name)
        admin.close()
        if server is not None:
            server.cleanup()


def _drop_roles(admin: Any, database: str) -> None:
    """The capability roles of the dropped session database (they are named after it)."""
    from opsdeck.migrations import catalog_schemas
    from opsdeck.naming import database_role

    for capability in catalog_schemas():
        for kind in ("runtime", "owner"):
            admin.run(f'DROP ROLE IF EXISTS "{database_role(database, capability, kind)}"')


def capability_of(node: Any) -> str | None:
    """The capability whose runtime role a test runs as: its marker, else its package."""
    from functions.catalog import CAPABILITIES

    marker = node.get_closest_marker("capability")
    if marker is not None:
        return marker.args[0]
    try:
        parts = node.path.relative_to(ROOT / "tests").parts[:-1]
    except ValueError:
        return None
    return next((p for p in parts if p in CAPABILITIES), None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "capability(name): run the test as that capability's database role")


@pytest.fixture
def capability(request: pytest.FixtureRequest) -> str | None:
    return capability_of(request.node)


def runtime_role(database_url: str, capability: str) -> str:
    from localcloud.services import database_of
    from opsdeck.naming import database_role

    return database_role(database_of(database_url), capability, "runtime")


def _native(url: str):
    """A pg8000 native connection from a SQLAlchemy pg8000 URL."""
    import pg8000.native
    from sqlalchemy.engine import make_url

    u = make_url(url)
    kwargs: dict[str, Any] = {"user": u.username or "postgres", "database": u.database or "postgres"}
    if u.password:
        kwargs["password"] = u.password
    if "unix_sock" in u.query:
        kwargs["unix_sock"] = u.query["unix_sock"]
    else:
        kwargs["host"] = u.host or "127.0.0.1"
        kwargs["port"] = u.port or 5432
    return pg8000.native.Connection(**kwargs)


@pytest.fixture
def db(database_url: str, capability: str | None) -> Iterator[Any]:
    """A connection in a transaction rolled back after the test; layer code uses it too.
    In a capability's tests it acts as that capability's runtime role (``SET LOCAL ROLE``)."""
    from sqlalchemy import text

    from opsdeck import db as opsdeck_db

    conn = opsdeck_db.engine().connect()
    outer = conn.begin()
    if capability is not None:
        conn.execute(text(f'SET LOCAL ROLE "{runtime_role(database_url, capability)}"'))
    try:
        with opsdeck_db.bind(conn):
            yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def committed_db(database_url: str, capability: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Real commits (threads, several connections); every opsdeck table is emptied after.
    In a capability's tests the layer (and this engine) log in as its runtime role."""
    from opsdeck import db as opsdeck_db

    if capability is not None:
        from localcloud.services import role_url

        monkeypatch.setenv("DATABASE_URL", role_url(database_url, capability))
    yield opsdeck_db.engine()
    truncate_all(database_url)


def truncate_all(url: str | None = None) -> None:
    """Empty every opsdeck table (after tests that commit), as the admin user of ``url`` (default:
    ``DATABASE_URL`` now) — a capability's runtime role may not TRUNCATE."""
    from sqlalchemy import text

    from opsdeck import db as opsdeck_db

    admin = opsdeck_db.create_engine(url or os.environ["DATABASE_URL"])
    with admin.begin() as conn:
        tables = conn.execute(
            text(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'public')"
            )
        ).scalars()
        names = ", ".join(tables)
        if names:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    admin.dispose()


# -------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``REDIS_URL`` for the layer: the machine's Redis (db 15) or the in-process fake; empty."""
    given = (os.environ.get("TEST_REDIS_URL") or "").rstrip("/")
    # Tests own database 15 of a given server (flushed per test), never the database in the URL.
    url = re.sub(r"(redis://[^/]+)(/\d+)?$", r"\1/15", given) if given else "fakeredis://"
    monkeypatch.setenv("REDIS_URL", url)
    reset_runtime()
    from opsdeck import cache

    cache.client().flushdb()
    yield url
    cache.client().flushdb()
    reset_runtime()


@pytest.fixture
def redis_client(redis_url: str):
    from opsdeck import cache

    return cache.client()


# --------------------------------------------------------------------------- AWS


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for every AWS API, clients created fresh inside."""
    from moto import mock_aws

    from opsdeck import aws as opsdeck_aws

    opsdeck_aws.reset()
    with mock_aws():
        yield
    opsdeck_aws.reset()


# ------------------------------------------------------------------- local cloud


@pytest.fixture
def local_cloud(database_url: str, redis_url: str, committed_db: Any, tmp_path) -> Iterator[Any]:
    """The whole catalog in-process (``localcloud.LocalCloud``, docs/localcloud.md): virtual clock,
    this session's migrated database (tables truncated afterwards), ``redis_url``'s Redis.
    Do not combine with the ``aws`` fixture: moto's state is process-wide."""
    from localcloud import LocalCloud

    with LocalCloud(
        root=tmp_path / ".opsdeck",
        database_url=database_url,
        redis_url=redis_url,
        virtual_clock=True,
        deploy=False,
    ) as cloud:
        yield cloud


# ------------------------------------------------------------------------ events


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
