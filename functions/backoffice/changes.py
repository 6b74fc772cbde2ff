"""The consumer's input contract: Debezium-style change envelopes, validated, with a total LWW order.

One SQS message body = one row change::

    {"op": "c|u|d|r", "before": {...}|null, "after": {...}|null,
     "source": {"table": "ledger_entries"|"payment_orders", "ts_ms": <commit ms>, "lsn": <int>,
                "txId": <int>}, "ts_ms": <capture ms>}

``Change`` validates the envelope and the row image of its table (``LedgerRow`` /
``OrderRow``; unknown row fields are dropped, so nothing unexpected — PII — is stored). Inserts,
updates and snapshot reads need ``after``; deletes need ``before`` with at least the primary
key (PostgreSQL's default replica identity sends only the key).

Last-writer-wins needs a *total* order that SQL can compare as one row value, so every change
gets the key ``(rank, major, minor, tomb)``; the stored row is replaced only by a strictly greater
key (``bulk_upsert``'s version guard):

===== ============================ ======================= ============ =====================
rank  when                         major                   minor        tomb
===== ============================ ======================= ============ =====================
3     delete without a row version ``source.ts_ms`` or 0   lsn or 0     1  (a final tombstone)
2     row ``version`` present      version                 lsn or 0     1 for a delete, else 0
1     ``source.ts_ms`` present     ``source.ts_ms``        lsn or 0     1 for a delete, else 0
0     neither (``version_missing``) ingestion time (ms)    capture ms   1 for a delete, else 0
===== ============================ ======================= ============ =====================

* A delete whose image carries no version cannot be compared with versioned updates, so it is
  final: ledger and payment-order ids are generated and never reused, and a late, older update
  never resurrects the row. A delete with a version is ordered after the update that produced
  that version (same version: higher lsn, else ``tomb`` breaks the tie).
* Ingestion time is when the change entered the queue (SQS ``SentTimestamp``), so redeliveries
  of one message keep their place; rank 0 is the seed's interim ``ingested_at`` rule.
* Equal keys are duplicates: the second one changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StringConstraints,
    Tag,
    model_validator,
)

MAX_BIGINT = 2**63 - 1
TABLES = ("ledger_entries", "payment_orders")
KEY_COLUMN = {"ledger_entries": "tx_id", "payment_orders": "order_id"}

RANK_INGESTION, RANK_POSITION, RANK_VERSION, RANK_FINAL_DELETE = 0, 1, 2, 3

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


# ----------------------------------------------------------------- field types


def _id(value: Any) -> Any:
    """Ids arrive as strings or integers (bigint keys); both are stored as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def epoch_to_datetime(value: Any) -> Any:
    """Integers are epoch seconds, milliseconds or microseconds (Debezium's MicroTimestamp)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        magnitude = abs(value)
        if magnitude < 1e11:
            seconds = value
        elif magnitude < 1e14:
            seconds = value / 1e3
        else:
            seconds = value / 1e6
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("timestamp out of range") from None
    return value


def _utc(value: datetime) -> datetime:
    """Naive timestamps are UTC (the seed's storage rule); aware ones are converted."""
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Validation stays in pydantic-core (Rust) wherever it can (patterns, upper-casing): Python
# validator calls were a large part of the consumer's time. Ids keep their Python validator:
# integers become text, but floats and booleans are refused (1.0 and 1 must not be two keys).
Id = Annotated[str, BeforeValidator(_id), Field(pattern=ID_PATTERN.pattern)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$", to_upper=True)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Status = Annotated[str, Field(min_length=1, max_length=40)]
MinorUnits = Annotated[int, Field(ge=-MAX_BIGINT, le=MAX_BIGINT)]
Version = Annotated[int, Field(ge=0, le=MAX_BIGINT)]
UtcDatetime = Annotated[datetime, BeforeValidator(epoch_to_datetime), AfterValidator(_utc)]


# ------------------------------------------------------------------ row images


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LedgerRow(_Row):
    """``ledger_entries``: one leg of a double entry; ``tx_id`` is the entry (row) id."""

    tx_id: Id
    wallet_id: Id
    type: Code  # PAYMENT / RECEIVE / …
    amount: MinorUnits
    currency: Currency
    status: Status
    related_id: Id | None = None  # the payment order of the double entry
    related_type: Code | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    version: Version | None = None


class LedgerKey(_Row):
    """A delete's ``before`` image: the key, and whatever else the replica identity sent."""

    tx_id: Id
    wallet_id: Id | None = None
    type: Code | None = None
    amount: MinorUnits | None = None
    currency: Currency | None = None
    status: Status | None = None
    related_id: Id | None = None
    related_type: Code | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    version: Version | None = None


class OrderRow(_Row):
    """``payment_orders``: the business transaction both legs point at (``related_id``)."""

    order_id: Id
    status: Status
    amount: MinorUnits
    currency: Currency
    payer_wallet_id: Id | None = None
    payee_wallet_id: Id | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    version: Version | None = None


class OrderKey(_Row):
    order_id: Id
    status: Status | None = None
    amount: MinorUnits | None = None
    currency: Currency | None = None
    payer_wallet_id: Id | None = None
    payee_wallet_id: Id | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    version: Version | None = None


# -------------------------------------------------------------------- envelope


class Source(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    table: str
    ts_ms: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = None
    lsn: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = None
    txId: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    op: Literal["c", "u", "d", "r"]
    source: Source
    ts_ms: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = None

    @model_validator(mode="after")
    def _images_fit_the_operation(self):
        if self.op == "d":
            if self.before is None:  # type: ignore[attr-defined]
                raise ValueError("a delete needs the 'before' image with the row's key")
        elif self.after is None:  # type: ignore[attr-defined]
            raise ValueError(f"op {self.op!r} needs the 'after' image")
        return self

    # -- what the apply path needs -------------------------------------------------

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def is_delete(self) -> bool:
        return self.op == "d"

    @property
    def row(self) -> _Row:
        """The image to store: ``after``, or for a delete ``before``."""
        return self.before if self.op == "d" else self.after  # type: ignore[attr-defined,return-value]

    @property
    def key(self) -> str:
        return getattr(self.row, KEY_COLUMN[self.table])

    @property
    def source_ts(self) -> datetime | None:
        ms = self.source.ts_ms
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)

    def order_key(self, ingested_ms: int) -> tuple[int, int, int, int]:
        """This change's place in the total LWW order (see the module docstring)."""
        version = self.row.version  # type: ignore[attr-defined]
        tomb = 1 if self.op == "d" else 0
        lsn = self.source.lsn or 0
        if self.op == "d" and version is None:
            return (RANK_FINAL_DELETE, self.source.ts_ms or 0, lsn, 1)
        if version is not None:
            return (RANK_VERSION, version, lsn, tomb)
        if self.source.ts_ms is not None:
            return (RANK_POSITION, self.source.ts_ms, lsn, tomb)
        return (RANK_INGESTION, ingested_ms, self.ts_ms or 0, tomb)


class LedgerChange(_Envelope):
    before: LedgerKey | None = None
    after: LedgerRow | None = None


class OrderChange(_Envelope):
    before: OrderKey | None = None
    after: OrderRow | None = None


def _table_of(value: Any) -> str | None:
    source = value.get("source") if isinstance(value, dict) else getattr(value, "source", None)
    table = source.get("table") if isinstance(source, dict) else getattr(source, "table", None)
    return table if table in TABLES else None


class Change(RootModel):
    """A change of either table, chosen by ``source.table``."""

    root: Annotated[
        Annotated[LedgerChange, Tag("ledger_entries")] | Annotated[OrderChange, Tag("payment_orders")],
        Discriminator(
            _table_of,
            custom_error_type="unknown_table",
            custom_error_message="source.table must be 'ledger_entries' or 'payment_orders'",
        ),
    ]


AnyChange = LedgerChange | OrderChange
