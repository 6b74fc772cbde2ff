"""Alembic environment: online migrations only.

``opsdeck.migrations.upgrade`` passes its connection (advisory lock held, ``SET ROLE`` to the
branch's owner role); a bare ``alembic upgrade`` (alembic.ini) connects itself and takes the
lock, but creates no roles and grants nothing: use ``opsdeck db upgrade``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from opsdeck.db import create_engine
from opsdeck.migrations import MIGRATION_LOCK_ID

config = context.config


def run(connection) -> None:
    context.configure(
        connection=connection,
        version_table_schema="public",
        include_schemas=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


given = config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from opsdeck.db import database_url

        url = database_url()
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            run(connection)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()
