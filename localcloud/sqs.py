"""SQS queues as AWS runs them, in memory, on the local cloud's clock.

This engine is the authoritative state of every catalog queue and DLQ. The moto server
only keeps the queues' definitions (so ``ListQueues``/``GetQueueUrl``/tags work); every
message-level call on a catalog queue — from the AWS CLI, boto3 in a function, or
``LocalCloud.send`` — lands here (see ``localcloud.aws``). Semantics kept:

* visibility timeout per queue or per receive; ``ChangeMessageVisibility``; a receipt
  handle is only good for its latest receive (an older one deletes nothing, as on AWS);
* ``ApproximateReceiveCount``, ``SentTimestamp``, ``ApproximateFirstReceiveTimestamp``,
  ``SenderId``, message attributes with their MD5 (SQS's own algorithm);
* redrive: a message already received ``maxReceiveCount`` times goes to the DLQ on its
  next receive, keeping its id, body, attributes and original timestamp, and gaining
  ``DeadLetterQueueSourceArn``; retention counts from the original enqueue time;
* FIFO: order per ``MessageGroupId``; a group is locked while any of its messages is in
  flight; deduplication for 5 minutes by ``MessageDeduplicationId`` or, with
  ``ContentBasedDeduplication``, by the body's SHA-256; 20-digit sequence numbers;
* ``DelaySeconds`` (queue and, on standard queues, per message), retention, purge;
* ``StartMessageMoveTask`` for DLQs (moves every visible message at once).

Everything runs under one lock; ``changed`` (a Condition on it) wakes event source
mappings and long-polling receivers. Timers (visibility expiry, delays) sit in a heap and
are applied by ``tick(now)`` so the virtual clock processes them in order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
import json
import re
import threading
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud import events

MAX_MESSAGE_BYTES = 262_144
MAX_VISIBILITY_TIMEOUT_S = 43_200
MAX_DELAY_S = 900
DEDUP_WINDOW_S = 300
DEFAULT_RETENTION_S = 4 * 24 * 3600
DEFAULT_SENDER_ID = "AIDAOPSDECKLOCALCLOUD"
MAX_MESSAGE_ATTRIBUTES = 10
_INVALID_CHARS = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")


class SQSError(Exception):
    """A request SQS would refuse; ``code`` is SQS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class QueueDoesNotExist(SQSError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "AWS.SimpleQueueService.NonExistentQueue", f"The specified queue {name} does not exist."
        )


class ReceiptHandleIsInvalid(SQSError):
    def __init__(self, handle: str) -> None:
        super().__init__(
            "ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid receipt handle.'
        )


# ---------------------------------------------------------------------- helpers


def normalize_attributes(attributes: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Message attributes in SQS API shape; plain values become ``String`` attributes."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in (attributes or {}).items():
        if isinstance(value, Mapping):
            attr = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            if "BinaryValue" in attr and isinstance(attr["BinaryValue"], str):
                try:
                    attr["BinaryValue"] = base64.b64decode(attr["BinaryValue"], validate=True)
                except binascii.Error:
                    raise SQSError(
                        "InvalidParameterValue", f"message attribute {name!r}: BinaryValue is not base64"
                    ) from None
        elif isinstance(value, bytes):
            attr = {"DataType": "Binary", "BinaryValue": value}
        elif isinstance(value, bool):
            attr = {"DataType": "String", "StringValue": "true" if value else "false"}
        elif isinstance(value, int | float):
            attr = {"DataType": "Number", "StringValue": str(value)}
        else:
            attr = {"DataType": "String", "StringValue": str(value)}
        out[name] = attr
    return out


def _validate_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """Check attribute names/types/values the way SQS does; returns their size in bytes."""
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise SQSError(
            "InvalidParameterValue",
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [10].",
        )
    size = 0
    for name, attr in attributes.items():
        if not _ATTRIBUTE_NAME.match(name) or name.lower().startswith(("aws.", "amazon.")) or ".." in name:
            raise SQSError("InvalidParameterValue", f"Message attribute name '{name}' is invalid.")
        data_type = str(attr.get("DataType") or "")
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise SQSError(
                "InvalidParameterValue", f"The type of message (user) attribute '{name}' is invalid."
            )
        key = "BinaryValue" if base == "Binary" else "StringValue"
        value = attr.get(key)
        if value in (None, "", b""):
            raise SQSError(
                "InvalidParameterValue",
                f"Message (user) attribute '{name}' must contain a non-empty value "
                f"of message attribute type '{data_type}'.",
            )
        if base == "Number":
            try:
                float(str(value))
            except ValueError:
                raise SQSError(
                    "InvalidParameterValue", f"Could not cast message attribute '{name}' value to number."
                ) from None
        size += (
            len(name.encode())
            + len(data_type.encode())
            + len(value if isinstance(value, bytes) else str(value).encode())
        )
    return size


def _receipt(message_id: str, n: int) -> str:
    return base64.b64encode(f"{message_id}#{n}#{uuid.uuid4().hex}".encode()).decode()


def _receipt_message_id(handle: str) -> str | None:
    try:
        text = base64.b64decode(handle, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = text.split("#")
    return parts[0] if len(parts) == 3 else None


# ---------------------------------------------------------------------- model


@dataclass(slots=True, eq=False)
class Message:
    message_id: str
    body: str
    md5_of_body: str
    message_attributes: dict[str, dict[str, Any]]
    md5_of_message_attributes: str | None
    sent_ms: int
    seq: int
    sender_id: str
    expires_at: float
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None
    trace_header: str | None = None
    dead_letter_source_arn: str | None = None
    receive_count: int = 0
    first_receive_ms: int | None = None
    visible_at: float = 0.0
    receipt_handle: str | None = None

    def system_attributes(self) -> dict[str, str]:
        """Every system attribute ``ReceiveMessage(MessageSystemAttributeNames=["All"])`` returns."""
        attrs = {
            "SenderId": self.sender_id,
            "SentTimestamp": str(self.sent_ms),
            "ApproximateReceiveCount": str(self.receive_count),
            "ApproximateFirstReceiveTimestamp": str(self.first_receive_ms or self.sent_ms),
        }
        if self.group_id is not None:
            attrs["MessageGroupId"] = self.group_id
        if self.dedup_id is not None:
            attrs["MessageDeduplicationId"] = self.dedup_id
        if self.sequence_number is not None:
            attrs["SequenceNumber"] = self.sequence_number
        if self.trace_header:
            attrs["AWSTraceHeader"] = self.trace_header
        if self.dead_letter_source_arn:
            attrs["DeadLetterQueueSourceArn"] = self.dead_letter_source_arn
        return attrs

    def snapshot(self, state: str) -> dict[str, Any]:
        """A JSON-able copy (``peek``, the control API): body, ids, attributes, state."""
        return {
            "MessageId": self.message_id,
            "Body": self.body,
            "Attributes": self.system_attributes(),
            "MessageAttributes": {
                k: {
                    "DataType": v["DataType"],
                    **(
                        {"BinaryValue": base64.b64encode(v["BinaryValue"]).decode()}
                        if "BinaryValue" in v
                        else {"StringValue": v["StringValue"]}
                    ),
                }
                for k, v in self.message_attributes.items()
            },
            "State": state,
        }

    def lambda_record(self, queue_name: str) -> dict[str, Any]:
        """This message as one record of a Lambda SQS event (``localcloud.events.sqs_record``)."""
        extra = {}
        if self.trace_header:
            extra["AWSTraceHeader"] = self.trace_header
        if self.dead_letter_source_arn:
            extra["DeadLetterQueueSourceArn"] = self.dead_letter_source_arn
        return events.sqs_record(
            self.body,
            queue_name=queue_name,
            message_id=self.message_id,
            receive_count=self.receive_count,
            sent_ms=self.sent_ms,
            first_receive_ms=self.first_receive_ms,
            message_attributes=self.message_attributes,
            group_id=self.group_id,
            dedup_id=self.dedup_id,
            sequence_number=self.sequence_number,
            receipt_handle=self.receipt_handle,
            sender_id=self.sender_id,
            extra_attributes=extra or None,
        )


@dataclass(frozen=True)
class Redrive:
    dead_letter_queue: str  # queue name
    max_receive_count: int


@dataclass(frozen=True)
class SendResult:
    message_id: str
    md5_of_body: str
    md5_of_message_attributes: str | None
    sequence_number: str | None
    duplicate: bool = False


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    started_ms: int
    to_move: int
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskHandle": self.handle,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.destination_arn:
            out["DestinationArn"] = self.destination_arn
        if self.max_per_second:
            out["MaxNumberOfMessagesPerSecond"] = self.max_per_second
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out


@dataclass
class Queue:
    name: str
    arn: str
    fifo: bool = False
    visibility_timeout_s: int = 30
    retention_s: int = DEFAULT_RETENTION_S
    delay_s: int = 0
    max_message_bytes: int = MAX_MESSAGE_BYTES
    content_based_dedup: bool = False
    receive_wait_s: int = 0
    redrive: Redrive | None = None
    redrive_allow_policy: str | None = None
    visible: OrderedDict[str, Message] = field(default_factory=OrderedDict)  # standard queues
    groups: dict[str, deque[Message]] = field(default_factory=dict)  # FIFO queues
    group_inflight: Counter[str] = field(default_factory=Counter)
    delayed: dict[str, Message] = field(default_factory=dict)
    inflight: dict[str, Message] = field(default_factory=dict)  # receipt handle → message
    dedup: dict[str, tuple[float, SendResult]] = field(default_factory=dict)
    sequence: int = 0
    move_tasks: list[MoveTask] = field(default_factory=list)

    def configure(self, attributes: Mapping[str, Any]) -> None:
        """Apply queue attributes (as CreateQueue/SetQueueAttributes take them)."""
        a = attributes
        if "VisibilityTimeout" in a:
            self.visibility_timeout_s = int(a["VisibilityTimeout"])
        if "MessageRetentionPeriod" in a:
            self.retention_s = int(a["MessageRetentionPeriod"])
        if "DelaySeconds" in a:
            self.delay_s = int(a["DelaySeconds"])
        if "MaximumMessageSize" in a:
            self.max_message_bytes = int(a["MaximumMessageSize"])
        if "ContentBasedDeduplication" in a:
            self.content_based_dedup = str(a["ContentBasedDeduplication"]).lower() == "true"
        if "ReceiveMessageWaitTimeSeconds" in a:
            self.receive_wait_s = int(a["ReceiveMessageWaitTimeSeconds"])
        if "RedriveAllowPolicy" in a:
            policy = a["RedriveAllowPolicy"]
            self.redrive_allow_policy = (
                policy if isinstance(policy, str) or policy is None else json.dumps(policy)
            )
        if "RedrivePolicy" in a:
            policy = a["RedrivePolicy"]
            if not policy:
                self.redrive = None
            else:
                policy = json.loads(policy) if isinstance(policy, str) else policy
                self.redrive = Redrive(
                    dead_letter_queue=str(policy["deadLetterTargetArn"]).rsplit(":", 1)[-1],
                    max_receive_count=int(policy["maxReceiveCount"]),
                )

    def visible_count(self) -> int:
        if self.fifo:
            return sum(len(g) for g in self.groups.values())
        return len(self.visible)

    def all_messages(self) -> Iterable[tuple[Message, str]]:
        if self.fifo:
            ordered = sorted((m for g in self.groups.values() for m in g), key=lambda m: m.seq)
            yield from ((m, "visible") for m in ordered)
        else:
            yield from ((m, "visible") for m in self.visible.values())
        yield from ((m, "delayed") for m in sorted(self.delayed.values(), key=lambda m: m.seq))
        yield from ((m, "inflight") for m in sorted(self.inflight.values(), key=lambda m: m.seq))


# ---------------------------------------------------------------------- engine


class SqsEngine:
    """Every queue, one lock, one timer heap; time comes from ``clock``."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.queues: dict[str, Queue] = {}
        self._timers: list[tuple[float, int, str, str, str]] = []
        self._counter = itertools.count()
        self._receipts = itertools.count(1)
        self._sends = 0
        #: called (under the lock) whenever messages may have become receivable
        self.on_change: list[Callable[[], None]] = []

    # ------------------------------------------------------------- queues
    def create_queue(self, name: str, attributes: Mapping[str, Any] | None = None) -> Queue:
        with self.lock:
            queue = self.queues.get(name)
            if queue is None:
                fifo = name.endswith(".fifo")
                queue = Queue(name=name, arn=events.queue_arn(name), fifo=fifo)
                self.queues[name] = queue
            queue.configure(attributes or {})
            return queue

    def queue(self, name: str) -> Queue:
        try:
            return self.queues[name]
        except KeyError:
            raise QueueDoesNotExist(name) from None

    def __contains__(self, name: str) -> bool:
        return name in self.queues

    def _notify(self) -> None:
        self.changed.notify_all()
        for callback in self.on_change:
            callback()

    # --------------------------------------------------------------- send
    def send(
        self,
        queue_name: str,
        body: str,
        *,
        message_attributes: Mapping[str, Any] | None = None,
        delay_s: int | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        trace_header: str | None = None,
        sender_id: str = DEFAULT_SENDER_ID,
    ) -> SendResult:
        with self.lock:
            queue = self.queue(queue_name)
            result = self._send(
                queue,
                body,
                normalize_attributes(message_attributes),
                delay_s=delay_s,
                group_id=group_id,
                dedup_id=dedup_id,
                trace_header=trace_header,
                sender_id=sender_id,
            )
            self._notify()
            return result

    def _send(
        self,
        queue: Queue,
        body: str,
        attributes: dict[str, dict[str, Any]],
        *,
        delay_s: int | None,
        group_id: str | None,
        dedup_id: str | None,
        trace_header: str | None,
        sender_id: str,
        keep: Message | None = None,
    ) -> SendResult:
        if not isinstance(body, str) or body == "":
            raise SQSError("MissingParameter", "The request must contain the parameter MessageBody.")
        if _INVALID_CHARS.search(body):
            raise SQSError(
                "InvalidMessageContents",
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
                "#xE000 to #xFFFD | #x10000 to #x10FFFF",
            )
        size = len(body.encode()) + _validate_attributes(attributes)
        if size > queue.max_message_bytes:
            raise SQSError(
                "InvalidParameterValue",
                "One or more parameters are invalid. "
                f"Reason: Message must be shorter than {queue.max_message_bytes} bytes.",
            )
        now = self.clock.time()
        if queue.fifo:
            if not group_id:
                raise SQSError("MissingParameter", "The request must contain the parameter MessageGroupId.")
            if delay_s:
                raise SQSError(
                    "InvalidParameterValue",
                    f"Value {delay_s} for parameter DelaySeconds is invalid. Reason: "
                    "The request include parameter that is not valid for this queue type.",
                )
            if not dedup_id:
                if not queue.content_based_dedup:
                    raise SQSError(
                        "InvalidParameterValue",
                        "The queue should either have ContentBasedDeduplication enabled "
                        "or MessageDeduplicationId provided explicitly",
                    )
                dedup_id = hashlib.sha256(body.encode()).hexdigest()
            seen = queue.dedup.get(dedup_id)
            if seen is not None and seen[0] > now:
                first = seen[1]
                return SendResult(
                    first.message_id,
                    first.md5_of_body,
                    first.md5_of_message_attributes,
                    first.sequence_number,
                    True,
                )
        elif delay_s is not None and not 0 <= delay_s <= MAX_DELAY_S:
            raise SQSError("InvalidParameterValue", f"Value {delay_s} for parameter DelaySeconds is invalid.")
        queue.sequence += 1
        sent_ms = keep.sent_ms if keep else int(now * 1000)
        message = Message(
            message_id=keep.message_id if keep else str(uuid.uuid4()),
            body=body,
            md5_of_body=hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            message_attributes=attributes,
            md5_of_message_attributes=events.md5_of_message_attributes(attributes),
            sent_ms=sent_ms,
            seq=next(self._counter),
            sender_id=sender_id,
            expires_at=sent_ms / 1000 + queue.retention_s,
            group_id=group_id,
            dedup_id=dedup_id if queue.fifo else None,
            sequence_number=f"{18_000_000_000_000_000_000 + queue.sequence * 65_536:020d}"
            if queue.fifo
            else None,
            trace_header=trace_header,
        )
        if keep is not None:  # a dead-lettered message keeps its history
            message.receive_count = keep.receive_count
            message.first_receive_ms = keep.first_receive_ms
            message.dead_letter_source_arn = keep.dead_letter_source_arn
        result = SendResult(
            message.message_id,
            message.md5_of_body,
            message.md5_of_message_attributes,
            message.sequence_number,
        )
        if queue.fifo and dedup_id:
            queue.dedup[dedup_id] = (now + DEDUP_WINDOW_S, result)
            self._sends += 1
            if self._sends % 1000 == 0:
                queue.dedup = {k: v for k, v in queue.dedup.items() if v[0] > now}
        delay = queue.delay_s if delay_s is None else delay_s
        if delay and keep is None:
            message.visible_at = now + delay
            queue.delayed[message.message_id] = message
            self._push(message.visible_at, queue.name, message.message_id, "delay")
        else:
            self._make_visible(queue, message)
        return result

    def _make_visible(self, queue: Queue, message: Message) -> None:
        message.receipt_handle = None
        if not queue.fifo:
            queue.visible[message.message_id] = message
            return
        group = queue.groups.setdefault(message.group_id or "", deque())
        if not group or group[-1].seq < message.seq:
            group.append(message)
        elif message.seq < group[0].seq:
            group.appendleft(message)
        else:  # rare: back into the middle of its group, by arrival order
            items = sorted([*group, message], key=lambda m: m.seq)
            group.clear()
            group.extend(items)

    def _push(self, at: float, queue: str, message_id: str, kind: str) -> None:
        heapq.heappush(self._timers, (at, next(self._counter), queue, message_id, kind))

    # ------------------------------------------------------------ receive
    def receive(
        self,
        queue_name: str,
        max_messages: int = 1,
        *,
        visibility_timeout: int | None = None,
        wait_s: float = 0,
    ) -> list[Message]:
        """Receive up to ``max_messages`` (any number: event source mappings batch more than 10).

        Returned ``Message`` objects are live: read them before releasing control. With a
        real clock, ``wait_s`` long-polls until a message arrives.
        """
        with self.lock:
            queue = self.queue(queue_name)
            vt = queue.visibility_timeout_s if visibility_timeout is None else visibility_timeout
            if not 0 <= vt <= MAX_VISIBILITY_TIMEOUT_S:
                raise SQSError(
                    "InvalidParameterValue", f"Value {vt} for parameter VisibilityTimeout is invalid."
                )
            taken = self._take(queue, max_messages, vt)
            if taken or wait_s <= 0 or self.clock.virtual:
                return taken
            deadline = self.clock.time() + wait_s
            while not taken:
                remaining = deadline - self.clock.time()
                if remaining <= 0:
                    break
                self.changed.wait(min(remaining, 0.5))
                self.tick(self.clock.time())
                taken = self._take(queue, max_messages, vt)
            return taken

    def _take(self, queue: Queue, limit: int, vt: int) -> list[Message]:
        now = self.clock.time()
        now_ms = int(now * 1000)
        taken: list[Message] = []

        def admit(message: Message) -> bool:
            """False when the message leaves instead of being received (expired or dead-lettered)."""
            if message.expires_at <= now:
                return False
            if queue.redrive and message.receive_count >= queue.redrive.max_receive_count:
                self._dead_letter(queue, message)
                return False
            message.receive_count += 1
            if message.first_receive_ms is None:
                message.first_receive_ms = now_ms
            message.visible_at = now + vt
            message.receipt_handle = _receipt(message.message_id, next(self._receipts))
            queue.inflight[message.receipt_handle] = message
            self._push(message.visible_at, queue.name, message.receipt_handle, "visibility")
            taken.append(message)
            return True

        if not queue.fifo:
            visible = queue.visible
            while visible and len(taken) < limit:
                admit(visible.popitem(last=False)[1])
            return taken
        heads = sorted(
            (g[0].seq, gid) for gid, g in queue.groups.items() if g and not queue.group_inflight[gid]
        )
        for _, gid in heads:
            group = queue.groups[gid]
            while group and len(taken) < limit:
                message = group.popleft()
                if admit(message):
                    queue.group_inflight[gid] += 1
            if not group:
                del queue.groups[gid]
            if len(taken) >= limit:
                break
        return taken

    def _dead_letter(self, queue: Queue, message: Message) -> None:
        assert queue.redrive is not None
        dlq = self.queues.get(queue.redrive.dead_letter_queue)
        if dlq is None:  # AWS would keep retrying; so does the emulation
            self._make_visible(queue, message)
            return
        message.dead_letter_source_arn = queue.arn
        self._send(
            dlq,
            message.body,
            message.message_attributes,
            delay_s=None,
            group_id=message.group_id,
            dedup_id=message.dedup_id or message.message_id,
            trace_header=message.trace_header,
            sender_id=message.sender_id,
            keep=message,
        )

    # ---------------------------------------------------- delete / visibility
    def _inflight(self, queue: Queue, receipt: str) -> Message | None:
        message = queue.inflight.get(receipt)
        if message is None and _receipt_message_id(receipt) is None:
            raise ReceiptHandleIsInvalid(receipt)
        return message

    def delete(self, queue_name: str, receipt: str) -> bool:
        """Delete the message received with ``receipt``; False (no error) for a stale handle."""
        with self.lock:
            queue = self.queue(queue_name)
            message = self._inflight(queue, receipt)
            if message is None:
                return False
            del queue.inflight[receipt]
            message.receipt_handle = None
            if queue.fifo:
                self._release_group(queue, message)
                self._notify()
            return True

    def delete_many(self, queue_name: str, receipts: Iterable[str]) -> None:
        with self.lock:
            for receipt in receipts:
                self.delete(queue_name, receipt)

    def change_visibility(self, queue_name: str, receipt: str, timeout: int) -> None:
        with self.lock:
            queue = self.queue(queue_name)
            if not 0 <= timeout <= MAX_VISIBILITY_TIMEOUT_S:
                raise SQSError(
                    "InvalidParameterValue", f"Value {timeout} for parameter VisibilityTimeout is invalid."
                )
            message = self._inflight(queue, receipt)
            if message is None:
                raise SQSError(
                    "InvalidParameterValue",
                    f"Value {receipt} for parameter ReceiptHandle is invalid. Reason: "
                    "Message does not exist or is not available for visibility timeout change.",
                )
            message.visible_at = self.clock.time() + timeout
            if timeout == 0:
                self._return(queue, receipt)
                self._notify()
            else:
                self._push(message.visible_at, queue.name, receipt, "visibility")

    def _release_group(self, queue: Queue, message: Message) -> None:
        gid = message.group_id or ""
        queue.group_inflight[gid] -= 1
        if queue.group_inflight[gid] <= 0:
            del queue.group_inflight[gid]

    def _return(self, queue: Queue, receipt: str) -> None:
        message = queue.inflight.pop(receipt)
        if queue.fifo:
            self._release_group(queue, message)
        self._make_visible(queue, message)

    # ------------------------------------------------------------- timers
    def next_timer(self) -> float | None:
        with self.lock:
            return self._timers[0][0] if self._timers else None

    def tick(self, now: float) -> bool:
        """Apply every timer due at ``now``; True if messages became visible."""
        changed = False
        with self.lock:
            timers = self._timers
            while timers and timers[0][0] <= now:
                _, _, queue_name, key, kind = heapq.heappop(timers)
                queue = self.queues.get(queue_name)
                if queue is None:
                    continue
                if kind == "visibility":
                    message = queue.inflight.get(key)
                    if message is not None and message.visible_at <= now:
                        self._return(queue, key)
                        changed = True
                elif kind == "delay":
                    message = queue.delayed.pop(key, None)
                    if message is not None:
                        self._make_visible(queue, message)
                        changed = True
            if changed:
                self._notify()
        return changed

    # ------------------------------------------------------------ inspect
    def depth(self, queue_name: str) -> tuple[int, int, int]:
        """(visible, in flight, delayed)."""
        with self.lock:
            queue = self.queue(queue_name)
            now = self.clock.time()
            self._expire(queue, now)
            return queue.visible_count(), len(queue.inflight), len(queue.delayed)

    def _expire(self, queue: Queue, now: float) -> None:
        """Drop visible messages past their retention period."""
        if queue.fifo:
            for gid in list(queue.groups):
                kept = deque(m for m in queue.groups[gid] if m.expires_at > now)
                if kept:
                    queue.groups[gid] = kept
                else:
                    del queue.groups[gid]
        elif queue.visible and any(m.expires_at <= now for m in queue.visible.values()):
            for mid in [mid for mid, m in queue.visible.items() if m.expires_at <= now]:
                del queue.visible[mid]

    def peek(self, queue_name: str, limit: int = 10) -> list[dict[str, Any]]:
        """Messages in queue order (visible, then delayed, then in flight), untouched."""
        with self.lock:
            queue = self.queue(queue_name)
            self._expire(queue, self.clock.time())
            return [m.snapshot(state) for m, state in itertools.islice(queue.all_messages(), limit)]

    def purge(self, queue_name: str) -> None:
        with self.lock:
            queue = self.queue(queue_name)
            queue.visible.clear()
            queue.groups.clear()
            queue.group_inflight.clear()
            queue.delayed.clear()
            queue.inflight.clear()

    def sources_of(self, dlq_name: str) -> list[Queue]:
        """Queues whose redrive policy targets ``dlq_name``."""
        with self.lock:
            return [q for q in self.queues.values() if q.redrive and q.redrive.dead_letter_queue == dlq_name]

    # ---------------------------------------------------------- move tasks
    def start_move_task(
        self, source_name: str, destination_name: str | None = None, max_per_second: int | None = None
    ) -> MoveTask:
        """``StartMessageMoveTask``: every visible message of the DLQ ``source_name`` goes to
        ``destination_name`` or back to the queue it was dead-lettered from."""
        with self.lock:
            source = self.queue(source_name)
            if not self.sources_of(source_name):
                raise SQSError(
                    "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue."
                )
            if any(t.status == "RUNNING" for t in source.move_tasks):
                raise SQSError(
                    "UnsupportedOperation",
                    "There is already a task running. Only one active task is allowed "
                    "for a source queue arn at a given time.",
                )
            destination = self.queue(destination_name) if destination_name else None
            messages = [
                m
                for m, _ in source.all_messages()
                if m.receipt_handle is None and m.message_id not in source.delayed
            ]
            task = MoveTask(
                handle=base64.b64encode(
                    json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source.arn}).encode()
                ).decode(),
                source_arn=source.arn,
                destination_arn=destination.arn if destination else None,
                max_per_second=max_per_second,
                started_ms=self.clock.millis(),
                to_move=len(messages),
            )
            source.move_tasks.append(task)
            for message in messages:
                target = destination or self.queues.get(
                    (message.dead_letter_source_arn or "").rsplit(":", 1)[-1]
                )
                if target is None:
                    task.status, task.failure_reason = "FAILED", "AWS.SimpleQueueService.NonExistentQueue"
                    break
                self._remove_visible(source, message)
                self._send(
                    target,
                    message.body,
                    message.message_attributes,
                    delay_s=None,
                    group_id=message.group_id,
                    dedup_id=message.message_id if target.fifo else None,
                    trace_header=message.trace_header,
                    sender_id=message.sender_id,
                )
                task.moved += 1
            if task.status == "RUNNING":
                task.status = "COMPLETED"
            self._notify()
            return task

    def _remove_visible(self, queue: Queue, message: Message) -> None:
        if queue.fifo:
            group = queue.groups.get(message.group_id or "")
            if group is not None:
                group.remove(message)
                if not group:
                    del queue.groups[message.group_id or ""]
        else:
            queue.visible.pop(message.message_id, None)

    def move_tasks(self, source_name: str) -> list[MoveTask]:
        with self.lock:
            return list(reversed(self.queue(source_name).move_tasks))
