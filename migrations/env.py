"""Alembic environment: online migrations only, under an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from opsdeck.db import create_engine
from opsdeck.migrations import MIGRATION_LOCK_ID

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    from opsdeck.db import database_url

    url = database_url()

engine = create_engine(url)
with engine.connect() as connection:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        context.configure(
            connection=connection,
            version_table_schema="public",
            include_schemas=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
        connection.commit()
engine.dispose()
