"""SQS event source mappings: how Lambda polls a queue and what it does with the answer.

Per catalog ``Queue`` trigger, with ``FunctionResponseTypes=["ReportBatchItemFailures"]``:

* **Batching.** With ``batching_window_s = 0`` a batch is whatever is receivable now, up to
  ``batch_size``. With a window, received messages are buffered (they are in flight, their
  visibility timeout running) until the batch is full, the window — opened by the first
  message — closes, or the payload nears Lambda's 6 MB limit.
* **Concurrency.** At most ``max_concurrency`` batches in flight (5 when unset, Lambda's
  initial SQS scaling), and never more than the function's reserved concurrency.
* **Result.** A function error or timeout leaves the whole batch in flight: every message
  comes back after the visibility timeout. A success deletes every message except those
  listed in ``batchItemFailures``, which come back after the visibility timeout. A response
  Lambda cannot accept — not an object, ``batchItemFailures`` not a list, an item without
  ``itemIdentifier``, an empty/null identifier or one naming no message of the batch — fails
  the whole batch, as AWS documents. (Redrive after ``maxReceiveCount`` is the queue's job.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localcloud.sqs import Message, SqsEngine

PAYLOAD_LIMIT = 6 * 1024 * 1024
RECORD_OVERHEAD = 1024
DEFAULT_CONCURRENCY = 5


@dataclass
class Batch:
    mapping: EventSourceMapping
    records: list[dict[str, Any]]
    receipts: dict[str, str]  # messageId → receipt handle

    @property
    def event(self) -> dict[str, Any]:
        return {"Records": self.records}


def batch_failures(result: Any, message_ids: set[str]) -> tuple[list[str], str | None]:
    """(failed message ids, None) for a response Lambda accepts, else ([], why it is invalid)."""
    if result is None:
        return [], None
    if not isinstance(result, dict):
        return [], f"the response is a {type(result).__name__}, not an object"
    items = result.get("batchItemFailures")
    if items is None:
        return [], None
    if not isinstance(items, list):
        return [], "batchItemFailures is not a list"
    failed: list[str] = []
    for item in items:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return [], "a batchItemFailures entry has no itemIdentifier"
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return [], "a batchItemFailures entry has an empty or null itemIdentifier"
        if identifier not in message_ids:
            return [], f"itemIdentifier {identifier!r} is not a message of this batch"
        failed.append(identifier)
    return failed, None


class EventSourceMapping:
    def __init__(self, trigger: Any, runtime: Any, engine: SqsEngine) -> None:
        self.trigger = trigger
        self.runtime = runtime
        self.engine = engine
        self.queue_name: str = trigger.queue_name
        self.batch_size: int = trigger.batch_size
        self.window_s: float = trigger.batching_window_s
        limit = trigger.max_concurrency or DEFAULT_CONCURRENCY
        if runtime.function.reserved_concurrency:
            limit = min(limit, runtime.function.reserved_concurrency)
        self.concurrency = limit
        self.in_progress = 0
        self.enabled = True
        self._buffer: list[tuple[Message, str]] = []
        self.window_deadline: float | None = None

    @property
    def function_name(self) -> str:
        return self.runtime.function.name

    def busy(self) -> bool:
        """Messages buffered or batches running (queue contents are checked separately)."""
        return bool(self._buffer) or self.in_progress > 0

    def deadline(self) -> float | None:
        return self.window_deadline if self._buffer else None

    def ready(self, now: float) -> list[Batch]:
        """Batches to invoke now (call with the engine lock held)."""
        batches: list[Batch] = []
        if not self.enabled:
            return batches
        while self.in_progress + len(batches) < self.concurrency:
            if not self.window_s:
                messages = self.engine.receive(self.queue_name, self.batch_size)
                if not messages:
                    break
                batches.append(self._batch([(m, m.receipt_handle or "") for m in messages]))
                continue
            need = self.batch_size - len(self._buffer)
            if need > 0:
                got = self.engine.receive(self.queue_name, need)
                self._buffer.extend((m, m.receipt_handle or "") for m in got)
            if not self._buffer:
                break
            if self.window_deadline is None:
                self.window_deadline = now + self.window_s
            size = sum(len(m.body) + RECORD_OVERHEAD for m, _ in self._buffer)
            if len(self._buffer) < self.batch_size and now < self.window_deadline and size < PAYLOAD_LIMIT:
                break
            taken, self._buffer, self.window_deadline = self._buffer, [], None
            if size >= PAYLOAD_LIMIT:  # keep what does not fit for the next batch
                kept, total = [], 0
                for pair in taken:
                    total += len(pair[0].body) + RECORD_OVERHEAD
                    (kept if total <= PAYLOAD_LIMIT or not kept else self._buffer).append(pair)
                taken = kept
            batch = self._batch(taken)
            if batch.records:
                batches.append(batch)
        self.in_progress += len(batches)
        return batches

    def _batch(self, pairs: list[tuple[Message, str]]) -> Batch:
        queue = self.engine.queue(self.queue_name)
        records, receipts = [], {}
        for message, receipt in pairs:
            if queue.inflight.get(receipt) is not message:  # its visibility ran out while buffered
                continue
            records.append(message.lambda_record(self.queue_name))
            receipts[message.message_id] = receipt
        return Batch(self, records, receipts)

    def complete(self, batch: Batch, invocation: Any) -> dict[str, Any]:
        """Apply Lambda's verdict on the batch; returns journal fields."""
        fields: dict[str, Any] = {
            "event_id": batch.records[0]["messageId"] if batch.records else None,
            "records": len(batch.records),
            "queue": self.queue_name,
        }
        with self.engine.lock:
            self.in_progress -= 1
            if invocation.failed:
                fields["batch_item_failures"] = list(batch.receipts)
                return fields
            failed, invalid = batch_failures(invocation.result, set(batch.receipts))
            if invalid:
                invocation.outcome = "invalid-response"
                invocation.error = f"invalid batch response: {invalid}"
                fields["batch_item_failures"] = list(batch.receipts)
                return fields
            keep = set(failed)
            self.engine.delete_many(
                self.queue_name, [r for mid, r in batch.receipts.items() if mid not in keep]
            )
            if failed:
                invocation.outcome = "partial"
            fields["batch_item_failures"] = failed
            self.engine.changed.notify_all()
        return fields
