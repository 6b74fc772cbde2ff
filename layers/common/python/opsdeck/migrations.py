"""Alembic upgrades and the capability database roles, shared by ``opsdeck db upgrade``, the
deploy-time migration function, the local cloud and the test harness.

One PostgreSQL schema (or a few, ``functions.catalog.SCHEMAS``) per capability, one Alembic
branch per capability (label = the capability). ``upgrade`` holds a PostgreSQL advisory lock
for the whole run, so two deploys (or a deploy and a laptop) never interleave, and then:

1. **roles** (``ensure_roles``): for every capability an owner role ``<db>_<cap>_owner``
   (NOLOGIN; owns the capability's schemas; the migrator may ``SET ROLE`` to it) and a runtime
   role ``<db>_<cap>_app`` (LOGIN; what the capability's functions connect as). Created with
   ``IF NOT EXISTS``-style DO blocks, named after the database (``opsdeck.naming.database_role``)
   so several databases on one server never share or race for a role. The capability's schemas
   are created owned by its owner, and anything in them owned by someone else (a database
   migrated before roles existed) is handed over to the owner.
2. **migrations**, branch by branch, each **as its capability's owner role** (``SET ROLE``):
   what a migration creates belongs to the owner, and the owner can create nothing in another
   capability's schema. A branch whose label is not a catalog capability is refused.
3. **grants** (``grant_runtime``): the runtime role gets USAGE on its own schemas, SELECT /
   INSERT / UPDATE / DELETE on their tables and views, USAGE / SELECT on their sequences,
   EXECUTE on their functions — on what exists now and, through ``ALTER DEFAULT PRIVILEGES
   FOR ROLE <owner>``, on whatever the owner creates later. Nothing else: no other schema,
   no DDL, no TRUNCATE, not ``public.alembic_version``. ``ops``' runtime role (health checks)
   needs only CONNECT, and gets its own schema's DML like any capability.
4. **passwords** (optional): ``passwords`` maps a capability to its runtime role's password
   (AWS: from the role's Secrets Manager secret, which RDS Proxy also reads; local cloud: a
   generated one).

Every step is idempotent: running ``upgrade`` again changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, Unavailable
from .naming import database_role

MIGRATION_LOCK_ID = 0x0D5DEC  # pg_advisory_lock key held while migrating (per database)
RUNTIME_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


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


def _config(url: str, connection: Any = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("recursive_version_locations", "true")
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def catalog_schemas() -> dict[str, tuple[str, ...]]:
    """capability → schemas, from ``functions.catalog`` (the layer does not import it at import time)."""
    from functions import catalog

    return catalog.schemas()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ------------------------------------------------------------------------ roles


def ensure_roles(conn: Any, schemas: Mapping[str, tuple[str, ...]]) -> None:
    """Create each capability's owner and runtime role and its schemas (owned by the owner)."""
    from sqlalchemy import text

    database = conn.execute(text("SELECT current_database()")).scalar()
    for capability, names in schemas.items():
        owner = database_role(database, capability, "owner")
        runtime = database_role(database, capability, "runtime")
        for role, options in ((owner, "NOLOGIN"), (runtime, "LOGIN")):
            # CREATE ROLE has no IF NOT EXISTS; a concurrent creator makes it a unique violation
            conn.execute(
                text(
                    "DO $$ BEGIN "
                    f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) THEN "
                    f"CREATE ROLE {_ident(role)} {options}; END IF; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                )
            )
        # The migrator (RDS: the master user, not a superuser) must be able to SET ROLE to the owner
        # and act with its privileges. PostgreSQL 16 gives a role's creator ADMIN only (no SET, no
        # INHERIT), so the options are explicit there; before 16 membership implied both.
        conn.execute(
            text(
                "DO $$ BEGIN "
                "IF current_setting('server_version_num')::int >= 160000 THEN "
                "EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE, SET TRUE', "
                f"{_literal(owner)}, current_user); "
                f"ELSIF NOT pg_has_role(current_user, {_literal(owner)}, 'MEMBER') THEN "
                f"EXECUTE format('GRANT %I TO %I', {_literal(owner)}, current_user); END IF; END $$"
            )
        )
        db = _ident(database)
        conn.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {_ident(runtime)}, {_ident(owner)}"))
        # migrations write "CREATE SCHEMA IF NOT EXISTS", which PostgreSQL checks against CREATE
        # on the database even when the schema exists; the owner cannot log in, only the migrator
        # acts as it
        conn.execute(text(f"GRANT CREATE ON DATABASE {db} TO {_ident(owner)}"))
        for schema in names:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)} AUTHORIZATION {_ident(owner)}"))
            _adopt(conn, schema, owner)
    # Alembic's version table (public) is shared by the branches, which run as their owners
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS public.alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    owners = ", ".join(_ident(database_role(database, c, "owner")) for c in schemas)
    if owners:
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.alembic_version TO {owners}"))


_OWNED_BY_OTHERS = """
SELECT kind, name FROM (
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                          WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
           format('%I.%I', n.nspname, c.relname) AS name, c.relowner AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       OR n.nspname = :schema AND c.relkind = 'S' AND NOT EXISTS (
              SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
           format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), p.proowner
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = :schema AND p.prokind IN ('f', 'p')
    UNION ALL
    SELECT 'TYPE', format('%I.%I', n.nspname, t.typname), t.typowner
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = :schema AND t.typtype IN ('e', 'd', 'r')
    UNION ALL
    SELECT 'SCHEMA', format('%I', n.nspname), n.nspowner FROM pg_namespace n WHERE n.nspname = :schema
) objects
WHERE owner <> (SELECT oid FROM pg_roles WHERE rolname = :owner)
ORDER BY kind = 'SCHEMA' DESC, name
"""


def _adopt(conn: Any, schema: str, owner: str) -> None:
    """Hand everything in ``schema`` that someone else owns over to ``owner``."""
    from sqlalchemy import text

    for kind, name in conn.execute(text(_OWNED_BY_OTHERS), {"schema": schema, "owner": owner}).all():
        conn.execute(text(f"ALTER {kind} {name} OWNER TO {_ident(owner)}"))


def grant_runtime(conn: Any, schemas: Mapping[str, tuple[str, ...]]) -> None:
    """The runtime privileges of every capability on its own schemas, now and for later objects."""
    from sqlalchemy import text

    database = conn.execute(text("SELECT current_database()")).scalar()
    for capability, names in schemas.items():
        owner = _ident(database_role(database, capability, "owner"))
        runtime = _ident(database_role(database, capability, "runtime"))
        for schema in map(_ident, names):
            for statement in (
                f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
                f"GRANT USAGE ON SCHEMA {schema} TO {runtime}",
                f"GRANT {RUNTIME_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema} TO {runtime}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {runtime}",
                f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {runtime}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                f"GRANT {RUNTIME_TABLE_PRIVILEGES} ON TABLES TO {runtime}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                f"GRANT USAGE, SELECT ON SEQUENCES TO {runtime}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                f"GRANT EXECUTE ON FUNCTIONS TO {runtime}",
            ):
                conn.execute(text(statement))


def set_passwords(conn: Any, passwords: Mapping[str, str]) -> None:
    """``ALTER ROLE <db>_<cap>_app PASSWORD …`` for each capability given (never logged)."""
    from sqlalchemy import text

    database = conn.execute(text("SELECT current_database()")).scalar()
    for capability, password in passwords.items():
        role = _ident(database_role(database, capability, "runtime"))
        conn.execute(text(f"ALTER ROLE {role} WITH LOGIN PASSWORD {_literal(password)}"))


def drop_roles(conn: Any, database: str, schemas: Mapping[str, tuple[str, ...]]) -> None:
    """Drop a (dropped) database's capability roles: test sessions clean up after themselves."""
    from sqlalchemy import text

    for capability in schemas:
        for kind in ("runtime", "owner"):
            conn.execute(text(f"DROP ROLE IF EXISTS {_ident(database_role(database, capability, kind))}"))


# ---------------------------------------------------------------------- upgrade


def upgrade(
    url: str | None = None,
    target: str = "heads",
    *,
    schemas: Mapping[str, tuple[str, ...]] | None = None,
    passwords: Mapping[str, str] | None = None,
) -> list[str]:
    """Roles, then every capability branch as its owner, then grants; returns the new heads.

    ``target`` is ``heads`` (every branch to its head) or ``<capability>@<revision>``.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from .db import create_engine, database_url, first_line, normalize_url

    url = normalize_url(url) if url else database_url()
    schemas = dict(catalog_schemas() if schemas is None else schemas)
    branches = branch_labels()
    unknown = sorted(set(branches) - set(schemas))
    if unknown:
        raise ConfigError(
            f"migration branch(es) {unknown} are not catalog capabilities (functions/catalog.py)"
        )
    if target == "heads":
        targets = [(cap, f"{cap}@head") for cap in schemas if cap in branches]
    else:
        cap = target.split("@", 1)[0]
        if cap not in branches:
            raise ConfigError(f"upgrade target {target!r}: use heads or <capability>@<revision>")
        targets = [(cap, target)]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            conn.commit()
            try:
                ensure_roles(conn, schemas)
                conn.commit()
                database = conn.execute(text("SELECT current_database()")).scalar()
                from alembic import command

                for capability, branch_target in targets:
                    conn.execute(text(f"SET ROLE {_ident(database_role(database, capability, 'owner'))}"))
                    conn.commit()
                    try:
                        command.upgrade(_config(url, conn), branch_target)
                    finally:
                        conn.rollback()
                        conn.execute(text("RESET ROLE"))
                        conn.commit()
                grant_runtime(conn, schemas)
                if passwords:
                    set_passwords(conn, passwords)
                conn.commit()
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                conn.commit()
    except DBAPIError as exc:
        raise Unavailable(f"database unavailable: {first_line(exc)}") from None
    finally:
        engine.dispose()
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


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(""))


def heads() -> list[str]:
    """Revisions the scripts lead to."""
    return sorted(_scripts().get_heads())


def branch_labels() -> set[str]:
    """The branch labels of the migration scripts (one per capability that has migrations)."""
    return {label for rev in _scripts().walk_revisions() for label in rev.branch_labels}
