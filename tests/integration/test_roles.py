"""Capability database roles (opsdeck.migrations): least privilege on real PostgreSQL.

For every capability a probe table is created in each of its schemas *as its owner role*, the
way a later migration would; then, for every ordered pair of capabilities, one's runtime role
must be refused reading and writing the other's, while reaching its own (through the default
privileges, not a grant made for the probe). Runs as the session's admin user (no capability).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from localcloud.services import database_of
from opsdeck.migrations import catalog_schemas
from opsdeck.naming import database_role
from tests.conftest import _native, _with_database

SCHEMAS = catalog_schemas()


def _role(database_url: str, capability: str, kind: str = "runtime") -> str:
    return database_role(database_of(database_url), capability, kind)


def _refused(db: Any, statement: str) -> bool:
    savepoint = db.begin_nested()
    try:
        db.execute(text(statement))
    except ProgrammingError as exc:
        savepoint.rollback()
        info = exc.orig.args[0] if exc.orig.args else {}
        return isinstance(info, dict) and info.get("C") == "42501"  # insufficient_privilege
    savepoint.rollback()
    return False


@pytest.fixture
def probes(db: Any, database_url: str) -> dict[str, list[str]]:
    """One probe table per capability schema, created by the capability's owner role."""
    made: dict[str, list[str]] = {}
    for capability, schemas in SCHEMAS.items():
        db.execute(text(f'SET LOCAL ROLE "{_role(database_url, capability, "owner")}"'))
        for schema in schemas:
            db.execute(
                text(f"CREATE TABLE {schema}.role_probe (id bigint GENERATED ALWAYS AS IDENTITY, v text)")
            )
            made.setdefault(capability, []).append(f"{schema}.role_probe")
        db.execute(text("RESET ROLE"))
    return made


def test_every_capability_has_an_owner_and_a_runtime_role(db: Any, database_url: str):
    rows = dict(db.execute(text("SELECT rolname, rolcanlogin FROM pg_roles")).all())
    for capability in SCHEMAS:
        assert rows[_role(database_url, capability, "owner")] is False  # migrations act as it
        assert rows[_role(database_url, capability, "runtime")] is True
    owners = dict(db.execute(text("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace")).all())
    for capability, schemas in SCHEMAS.items():
        for schema in schemas:
            assert owners[schema] == _role(database_url, capability, "owner")


def test_tables_the_migrations_made_belong_to_their_capability_owner(db: Any, database_url: str):
    rows = db.execute(
        text(
            "SELECT schemaname, tablename, tableowner FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'public')"
        )
    ).all()
    assert rows
    owner_of = {s: cap for cap, schemas in SCHEMAS.items() for s in schemas}
    for schema, table, owner in rows:
        assert owner == _role(database_url, owner_of[schema], "owner"), f"{schema}.{table}"


def test_no_runtime_role_reaches_another_capabilitys_schema(db: Any, database_url: str, probes):
    checked = 0
    for mine, theirs in itertools.permutations(SCHEMAS, 2):
        db.execute(text(f'SET LOCAL ROLE "{_role(database_url, mine)}"'))
        for table in probes[theirs]:
            assert _refused(db, f"SELECT * FROM {table}"), f"{mine} reads {table}"
            assert _refused(db, f"INSERT INTO {table} (v) VALUES ('x')"), f"{mine} writes {table}"
            assert _refused(db, f"UPDATE {table} SET v = 'y'"), f"{mine} updates {table}"
            assert _refused(db, f"DELETE FROM {table}"), f"{mine} deletes from {table}"
            checked += 1
        db.execute(text("RESET ROLE"))
    assert checked == sum(len(t) for t in probes.values()) * (len(SCHEMAS) - 1)


def test_a_runtime_role_uses_what_its_owner_creates_later_and_nothing_more(
    db: Any, database_url: str, probes
):
    for capability, tables in probes.items():
        db.execute(text(f'SET LOCAL ROLE "{_role(database_url, capability)}"'))
        for table in tables:
            db.execute(text(f"INSERT INTO {table} (v) VALUES ('mine')"))  # identity: sequence usage
            db.execute(text(f"UPDATE {table} SET v = 'still mine'"))
            assert db.execute(text(f"SELECT v FROM {table}")).scalars().all() == ["still mine"]
            db.execute(text(f"DELETE FROM {table}"))
            assert _refused(db, f"TRUNCATE {table}")
            assert _refused(db, f"DROP TABLE {table}")
            assert _refused(db, f"CREATE TABLE {table.split('.')[0]}.sneaky (x int)")
        assert _refused(db, "SELECT * FROM public.alembic_version")
        db.execute(text("RESET ROLE"))


def test_functions_in_the_local_cloud_log_in_as_their_capability_role(local_cloud, database_url: str):
    from sqlalchemy.engine import make_url

    for f in local_cloud.functions:
        if not f.database:
            continue
        user = make_url(local_cloud.function_env(f.name)["DATABASE_URL"]).username
        if f.trigger.kind == "deploy":
            assert user == make_url(database_url).username  # the migrator alone
        else:
            assert user == _role(database_url, f.capability)


@pytest.fixture
def fresh_database(database_url: str):
    """An empty database on the session's server, dropped (with its roles) afterwards."""
    from opsdeck.db import normalize_url
    from tests.conftest import _drop_roles

    name = f"opsdeck_roles_{uuid.uuid4().hex[:8]}"
    admin = _native(database_url)
    admin.run(f"CREATE DATABASE {name}")
    admin.close()
    yield normalize_url(_with_database(database_url, name))
    admin = _native(database_url)
    admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _drop_roles(admin, name)
    admin.close()


def test_concurrent_upgrades_of_one_database_both_succeed(fresh_database: str):
    from opsdeck.migrations import heads, upgrade

    results: list[Any] = []

    def run() -> None:
        try:
            results.append(upgrade(fresh_database))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [heads(), heads()]


def test_a_database_migrated_before_roles_existed_is_handed_to_the_owners(fresh_database: str):
    """Legacy: everything created by the admin user (plain ``alembic upgrade``) is adopted."""
    from alembic import command

    from opsdeck.migrations import _config, upgrade

    command.upgrade(_config(fresh_database), "heads")  # env.py without a connection: as admin
    engine_conn = _native(fresh_database)
    before = engine_conn.run("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'bo'")
    assert before == [[make_user(fresh_database)]]
    upgrade(fresh_database)
    after = engine_conn.run("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'bo'")
    assert after == [[_role(fresh_database, "backoffice", "owner")]]
    grants = engine_conn.run(
        "SELECT has_table_privilege(:r, 'bo.admin_audit', 'SELECT, INSERT, UPDATE, DELETE')",
        r=_role(fresh_database, "backoffice"),
    )
    assert grants == [[True]]
    engine_conn.close()


def make_user(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).username or "postgres"


def test_a_migrator_that_is_not_a_superuser_can_do_it_all(fresh_database: str):
    """RDS's master user is no superuser: CREATEROLE and the database's owner, nothing more."""
    from sqlalchemy.engine import make_url

    from opsdeck.migrations import heads, upgrade

    master = f"master_{uuid.uuid4().hex[:8]}"
    admin = _native(fresh_database)
    admin.run(f"CREATE ROLE {master} LOGIN CREATEROLE PASSWORD 'master-pw'")
    admin.run(f"ALTER DATABASE {make_url(fresh_database).database} OWNER TO {master}")
    admin.close()
    as_master = (
        make_url(fresh_database)
        .set(username=master, password="master-pw")
        .render_as_string(hide_password=False)
    )
    try:
        assert upgrade(as_master) == heads()
        assert upgrade(as_master) == heads()  # and again: idempotent
        check = _native(fresh_database)
        owners = check.run("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'marketplace'")
        assert owners == [[_role(fresh_database, "marketplace", "owner")]]
        allowed = check.run(
            "SELECT has_table_privilege(:r, 'marketplace.orders', 'SELECT, INSERT, UPDATE, DELETE'), "
            "has_table_privilege(:r, 'bo.admin_audit', 'SELECT')",
            r=_role(fresh_database, "marketplace"),
        )
        assert allowed == [[True, False]]
        check.close()
    finally:
        admin = _native(fresh_database)
        admin.run(f"ALTER DATABASE {make_url(fresh_database).database} OWNER TO CURRENT_USER")
        admin.run(f"REASSIGN OWNED BY {master} TO CURRENT_USER")
        admin.run(f"DROP OWNED BY {master}")
        admin.run(f"DROP ROLE {master}")
        admin.close()
