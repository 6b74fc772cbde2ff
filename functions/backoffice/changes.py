"""The consumer's input contract: Debezium-style change envelopes, validated, with a total LWW order.

One SQS message body = one row change::

    {"op": "c|u|d|r", "before": {...}|null, "after": {...}|null,
     "source": {"table": "ledger_entries"|"payment_orders", "ts_ms": <commit ms>, "lsn": <int>,
                "txId": <int>}, "ts_ms": <capture ms>}

``CHANGE`` validates the envelope and the row image of its table (``LedgerRow`` /
``OrderRow``; unknown row fields are dropped, so nothing unexpected — PII — is stored). Inserts,
updates and snapshot reads need ``after``; deletes need ``before`` with at least the primary
key (PostgreSQL's default replica identity sends only the key). The image an operation does not
use (an update's ``before``, a delete's ``after``) is not read.

A validated change is a plain ``dict`` (the ``TypedDict`` shapes below), not a model instance:
validating into dicts stays inside pydantic-core and costs about a third of building nested
models, which matters at tens of thousands of changes per second (BENCHMARKS.md). The apply
path reads it as such (``change["source"]["table"]``, ``change["op"]``) plus ``image`` (the row
to store) and ``order_key`` (its place in the LWW order).

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
from typing import Annotated, Any, Generic, Literal, NotRequired, TypedDict, TypeVar

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    Strict,
    StringConstraints,
    Tag,
    TypeAdapter,
)

MAX_BIGINT = 2**63 - 1
TABLES = ("ledger_entries", "payment_orders")
TIMESTAMP_COLUMNS = ("created_at", "updated_at")

RANK_INGESTION, RANK_POSITION, RANK_VERSION, RANK_FINAL_DELETE = 0, 1, 2, 3

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


# ----------------------------------------------------------------- field types


def epoch_to_datetime(value: int | float) -> datetime:
    """Epoch seconds, milliseconds or microseconds (Debezium's MicroTimestamp), by magnitude."""
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


# Every check runs inside pydantic-core (Rust) for the common input; Python is called only for
# the rare shapes: an integer id (a bigint key, stored as text) and an epoch timestamp. Strict
# members keep floats and booleans out of ids (1.0 and 1 must not become two keys).
def _one_error(kind: str, message: str) -> GetPydanticSchema:
    """Report a union's failure as one readable error rather than one per member."""

    def schema(source: Any, handler: GetCoreSchemaHandler) -> Any:
        return {**handler(source), "custom_error_type": kind, "custom_error_message": message}

    return GetPydanticSchema(schema)


_Int = Annotated[int, Strict(), Field(ge=0, le=MAX_BIGINT)]
Id = Annotated[
    Annotated[str, Field(pattern=ID_PATTERN.pattern)] | Annotated[_Int, AfterValidator(str)],
    _one_error(
        "invalid_id", "an id is 1-64 letters, digits or ._:- (not starting with one of ._:-) or an integer"
    ),
]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$", to_upper=True)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Status = Annotated[str, Field(min_length=1, max_length=40)]
MinorUnits = Annotated[int, Field(ge=-MAX_BIGINT, le=MAX_BIGINT)]
Version = Annotated[int, Field(ge=0, le=MAX_BIGINT)]
# ISO 8601 text (naive means UTC: ``image`` attaches it) or an epoch number
_Epoch = AfterValidator(epoch_to_datetime)
Timestamp = Annotated[
    Annotated[datetime, Strict()] | Annotated[int, Strict(), _Epoch] | Annotated[float, Strict(), _Epoch],
    _one_error(
        "invalid_timestamp", "a timestamp is ISO 8601 text or epoch seconds, milliseconds or microseconds"
    ),
]
Position = Annotated[int, Field(ge=0, le=MAX_BIGINT)]


# ------------------------------------------------------------------ row images

_IGNORE_EXTRA = ConfigDict(extra="ignore")


class LedgerRow(TypedDict):
    """``ledger_entries``: one leg of a double entry; ``tx_id`` is the entry (row) id."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    tx_id: Id
    wallet_id: Id
    type: Code  # PAYMENT / RECEIVE / …
    amount: MinorUnits
    currency: Currency
    status: Status
    related_id: NotRequired[Id | None]  # the payment order of the double entry
    related_type: NotRequired[Code | None]
    created_at: Timestamp
    updated_at: NotRequired[Timestamp | None]
    version: NotRequired[Version | None]


class LedgerKey(TypedDict):
    """A delete's ``before`` image: the key, and whatever else the replica identity sent."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    tx_id: Id
    wallet_id: NotRequired[Id | None]
    type: NotRequired[Code | None]
    amount: NotRequired[MinorUnits | None]
    currency: NotRequired[Currency | None]
    status: NotRequired[Status | None]
    related_id: NotRequired[Id | None]
    related_type: NotRequired[Code | None]
    created_at: NotRequired[Timestamp | None]
    updated_at: NotRequired[Timestamp | None]
    version: NotRequired[Version | None]


class OrderRow(TypedDict):
    """``payment_orders``: the business transaction both legs point at (``related_id``)."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    order_id: Id
    status: Status
    amount: MinorUnits
    currency: Currency
    payer_wallet_id: NotRequired[Id | None]
    payee_wallet_id: NotRequired[Id | None]
    created_at: Timestamp
    updated_at: NotRequired[Timestamp | None]
    version: NotRequired[Version | None]


class OrderKey(TypedDict):
    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    order_id: Id
    status: NotRequired[Status | None]
    amount: NotRequired[MinorUnits | None]
    currency: NotRequired[Currency | None]
    payer_wallet_id: NotRequired[Id | None]
    payee_wallet_id: NotRequired[Id | None]
    created_at: NotRequired[Timestamp | None]
    updated_at: NotRequired[Timestamp | None]
    version: NotRequired[Version | None]


# -------------------------------------------------------------------- envelope


RowT = TypeVar("RowT", LedgerRow, OrderRow)
KeyT = TypeVar("KeyT", LedgerKey, OrderKey)


class Source(TypedDict):
    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    table: str  # chosen by the discriminator below: one of TABLES
    ts_ms: NotRequired[Position | None]
    lsn: NotRequired[Position | None]
    txId: NotRequired[Position | None]


class Upsert(TypedDict, Generic[RowT]):
    """An insert, update or snapshot read: the new image is ``after``."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    op: Literal["c", "u", "r"]
    after: RowT
    source: Source
    ts_ms: NotRequired[Position | None]


class Delete(TypedDict, Generic[KeyT]):
    """A delete: ``before`` holds at least the key."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    op: Literal["d"]
    before: KeyT
    source: Source
    ts_ms: NotRequired[Position | None]


LedgerUpsert, LedgerDelete = Upsert[LedgerRow], Delete[LedgerKey]
OrderUpsert, OrderDelete = Upsert[OrderRow], Delete[OrderKey]
Change = LedgerUpsert | LedgerDelete | OrderUpsert | OrderDelete


def _table_of(value: Any) -> str | None:
    source = value.get("source") if isinstance(value, dict) else None
    table = source.get("table") if isinstance(source, dict) else None
    return table if table in TABLES else None


_ByOp = Discriminator("op")  # string discriminator: a dict lookup in pydantic-core

#: Validates one SQS message body (``CHANGE.validate_json``) into a ``Change`` dict.
CHANGE: TypeAdapter[Change] = TypeAdapter(
    Annotated[
        Annotated[Annotated[LedgerUpsert | LedgerDelete, _ByOp], Tag("ledger_entries")]
        | Annotated[Annotated[OrderUpsert | OrderDelete, _ByOp], Tag("payment_orders")],
        Discriminator(
            _table_of,
            custom_error_type="unknown_table",
            custom_error_message="source.table must be 'ledger_entries' or 'payment_orders'",
        ),
    ]
)


def parse(body: str | bytes) -> Change:
    """One change from its JSON text; raises ``pydantic.ValidationError``."""
    return CHANGE.validate_json(body)


# ------------------------------------------------------- what the apply path reads


def image(change: Change) -> dict[str, Any]:
    """The row image to store: ``after``, or for a delete ``before``; naive timestamps become UTC.

    The dict is the change's own (validated, not shared): the apply path adds its columns to it.
    """
    row: dict[str, Any] = change["before"] if change["op"] == "d" else change["after"]  # type: ignore[typeddict-item]
    for name in TIMESTAMP_COLUMNS:
        value = row.get(name)
        if value is not None and value.tzinfo is None:
            row[name] = value.replace(tzinfo=UTC)
    return row


def utc_from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def order_key(change: Change, ingested_ms: int) -> tuple[int, int, int, int]:
    """This change's place in the total LWW order (see the module docstring)."""
    delete = change["op"] == "d"
    row = change["before"] if delete else change["after"]  # type: ignore[typeddict-item]
    version = row.get("version")
    source = change["source"]
    ts_ms = source.get("ts_ms")
    lsn = source.get("lsn") or 0
    tomb = 1 if delete else 0
    if delete and version is None:
        return (RANK_FINAL_DELETE, ts_ms or 0, lsn, 1)
    if version is not None:
        return (RANK_VERSION, version, lsn, tomb)
    if ts_ms is not None:
        return (RANK_POSITION, ts_ms, lsn, tomb)
    return (RANK_INGESTION, ingested_ms, change.get("ts_ms") or 0, tomb)
