"""SQS batch consumption: validate every record, apply in bulk, report the failures.

    from opsdeck.queue import consume

    @entry("queue")
    def handler(event, context):
        return consume(event, schema, apply_batch)

``schema`` is a pydantic model class or a ``TypeAdapter`` (validating into dicts or
dataclasses is cheaper than into nested models, for consumers where that matters).
``apply_batch(conn, items)`` receives ``[(record, value), ...]`` inside one database
transaction and must accept *any subset* of the batch (it is called again on halves
when a bulk write fails). The result is the ``batchItemFailures`` response built by
Powertools' ``BatchProcessor`` + ``process_partial_response``:

* a record that does not parse or validate fails alone, with its reason logged;
* the valid records are written in ONE transaction;
* if that write fails, the batch is bisected inside savepoints until the records
  that fail on their own are isolated — O(k·log n) statements for k bad records,
  not n; their neighbours are applied;
* on a FIFO queue, a failed record also fails every later record of its message
  group (they are not applied), so ordering per ``MessageGroupId`` holds.

Listed failures become visible again after the visibility timeout and reach the DLQ
after ``maxReceiveCount`` receives; nothing reported as processed is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import BaseModel, TypeAdapter, ValidationError

from .observability import logger, metric

if TYPE_CHECKING:
    from sqlalchemy import Connection

M = TypeVar("M")
Item = tuple[dict[str, Any], M]
#: what a record body is validated as
Schema = type[BaseModel] | TypeAdapter[Any]


class RecordRejected(Exception):
    """Raised for a record the consumer will not apply (reported as a batch item failure)."""


@dataclass
class Outcome(Generic[M]):
    """What happened to a batch; ``failures`` maps messageId → reason."""

    applied: list[Item[M]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _validator(schema: Schema) -> Callable[[str], Any]:
    if isinstance(schema, TypeAdapter):
        return schema.validator.validate_json  # pydantic-core directly: ~1 µs less per record
    return schema.model_validate_json


def _parse(record: dict[str, Any], validate: Callable[[str], Any]) -> Any:
    """A record's body validated; raises ``RecordRejected`` with a readable reason."""
    try:
        return validate(record["body"])
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise RecordRejected(f"invalid {loc}: {first.get('msg')} ({exc.error_count()} error(s))") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordRejected(f"unreadable record: {exc}") from None


def apply_records(
    records: Sequence[dict[str, Any]],
    schema: Schema,
    apply_batch: Callable[[Connection, list[Item[M]]], Any],
    *,
    fifo: bool = False,
) -> Outcome[M]:
    """Validate and apply ``records``; never raises for a bad record."""
    from . import db

    outcome: Outcome[M] = Outcome()
    valid: list[Item[M]] = []
    validate = _validator(schema)
    for record in records:
        try:
            valid.append((record, _parse(record, validate)))
        except RecordRejected as exc:
            outcome.failures[record["messageId"]] = str(exc)
    if fifo:
        valid = _drop_after_group_failure(records, valid, outcome.failures)
    if not valid:
        return outcome
    if fifo:
        _apply_in_order(valid, apply_batch, outcome)
        return outcome
    with db.transaction() as conn:
        _apply_isolating(conn, valid, apply_batch, outcome)
    return outcome


def _apply_isolating(conn: Connection, items: list[Item[M]], apply_batch, outcome: Outcome[M]) -> None:
    """Apply ``items`` in a savepoint; on failure bisect until the bad records stand alone."""
    try:
        with conn.begin_nested():
            apply_batch(conn, items)
        outcome.applied.extend(items)
        return
    except Exception as exc:
        if len(items) == 1:
            record = items[0][0]
            outcome.failures[record["messageId"]] = f"apply failed: {_reason(exc)}"
            return
    middle = len(items) // 2
    _apply_isolating(conn, items[:middle], apply_batch, outcome)
    _apply_isolating(conn, items[middle:], apply_batch, outcome)


def _apply_in_order(items: list[Item[M]], apply_batch, outcome: Outcome[M]) -> None:
    """FIFO: try the whole batch; on failure apply one by one, stopping a group at its first failure."""
    from . import db

    with db.transaction() as conn:
        try:
            with conn.begin_nested():
                apply_batch(conn, items)
            outcome.applied.extend(items)
            return
        except Exception:
            logger.warning(
                "FIFO batch write failed; applying record by record", extra={"records": len(items)}
            )
        failed_groups: set[str] = set()
        for record, model in items:
            group = record.get("attributes", {}).get("MessageGroupId", "")
            if group in failed_groups:
                outcome.failures[record["messageId"]] = "an earlier message of its group failed"
                continue
            try:
                with conn.begin_nested():
                    apply_batch(conn, [(record, model)])
                outcome.applied.append((record, model))
            except Exception as exc:
                failed_groups.add(group)
                outcome.failures[record["messageId"]] = f"apply failed: {_reason(exc)}"


def _drop_after_group_failure(
    records: Sequence[dict[str, Any]], valid: list[Item[M]], failures: dict[str, str]
) -> list[Item[M]]:
    failed_groups: set[str] = set()
    keep_ids: set[str] = set()
    for record in records:
        group = record.get("attributes", {}).get("MessageGroupId", "")
        if record["messageId"] in failures:
            failed_groups.add(group)
        elif group in failed_groups:
            failures[record["messageId"]] = "an earlier message of its group failed"
        else:
            keep_ids.add(record["messageId"])
    return [item for item in valid if item[0]["messageId"] in keep_ids]


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    return text[:300]


def consume(
    event: dict[str, Any],
    schema: Schema,
    apply_batch: Callable[[Connection, list[Item[M]]], Any],
    *,
    on_applied: Callable[[Outcome[M]], None] | None = None,
) -> dict[str, Any]:
    """The whole SQS consumer: returns ``{"batchItemFailures": [...]}`` for Lambda."""
    records = event.get("Records") or []
    fifo = bool(records) and records[0].get("eventSourceARN", "").endswith(".fifo")
    outcome = apply_records(records, schema, apply_batch, fifo=fifo)
    for message_id, reason in outcome.failures.items():
        logger.warning("record failed", extra={"message_id": message_id, "reason": reason})
    metric("RecordsApplied", len(outcome.applied))
    if outcome.failures:
        metric("RecordsFailed", len(outcome.failures))
    if on_applied is not None and outcome.applied:
        on_applied(outcome)

    failures = outcome.failures

    def report(record: Any) -> None:
        reason = failures.get(record.message_id)
        if reason is not None:
            raise RecordRejected(reason)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=report, processor=processor)
