"""SQLAlchemy ``Table`` objects of schema ``bo`` (the migration ``backoffice_0001`` creates them).

Only the write path needs them (``opsdeck.db.bulk_upsert`` takes a ``Table``); reads are SQL text.
A test checks that these columns and the migrated database agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, SmallInteger, Table, Text

metadata = MetaData(schema="bo")


def _lww() -> list[Column]:
    return [
        Column("source_ts", DateTime(timezone=True)),
        Column("source_lsn", BigInteger),
        Column("lww_rank", SmallInteger, nullable=False),
        Column("lww_major", BigInteger, nullable=False),
        Column("lww_minor", BigInteger, nullable=False),
        Column("lww_tomb", SmallInteger, nullable=False),
        Column("synced_at", DateTime(timezone=True), nullable=False),
        Column("deleted_at", DateTime(timezone=True)),
    ]


ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("tx_id", Text, primary_key=True),
    Column("wallet_id", Text),
    Column("type", Text),
    Column("amount", BigInteger),
    Column("currency", Text),
    Column("status", Text),
    Column("related_id", Text),
    Column("related_type", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("version", BigInteger),
    *_lww(),
)

payment_orders = Table(
    "payment_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text),
    Column("amount", BigInteger),
    Column("currency", Text),
    Column("payer_wallet_id", Text),
    Column("payee_wallet_id", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("version", BigInteger),
    *_lww(),
)

BY_SOURCE = {"ledger_entries": ledger_entries, "payment_orders": payment_orders}
LWW_KEY = ("lww_rank", "lww_major", "lww_minor", "lww_tomb")
