"""DLQ replay: one implementation for real AWS, the local endpoint, ``LocalCloud.replay``, the
``opsdeck queues replay`` CLI and the ops console (``POST /ops/queues/{dlq}/replay``).

It lives in the layer because ``ops-api`` runs it on Lambda; ``localcloud.replay`` re-exports it.

``replay(sqs, dlq_url, …)`` takes a boto3 SQS client (``opsdeck.aws.client("sqs")`` against
AWS, or one pointed at the local endpoint) and moves dead-lettered messages back:

* the whole DLQ, unfiltered, no limit, not a dry run → ``StartMessageMoveTask`` (SQS's own
  redrive: each message returns to the queue it came from, or to ``to``; ``rate`` becomes
  ``MaxNumberOfMessagesPerSecond``), then ``ListMessageMoveTasks`` until it completes;
  if the API is unavailable (older endpoint, FIFO restrictions, missing permission) it
  falls back to:
* receive → filter → send → delete: messages are received (all attributes), the JMESPath
  ``filter`` is applied to the JSON body (a body that is not JSON never matches), the
  first ``limit`` matches are sent — body, message attributes, and for FIFO the group
  (deduplication id = the original message id) — to ``to`` or to the queue named by the
  message's ``DeadLetterQueueSourceArn`` (else the DLQ's only source queue), then deleted
  from the DLQ; everything else is made visible again at the end. ``dry_run`` only counts.
  ``rate`` (messages/s) paces the sends.

Returns ``{"matched": n, "moved": n, "method": "move-task" | "receive-send-delete", …}``; the
receive-send-delete path also names what it moved (or, in a dry run, would move): ``message_ids``,
the first ``MAX_LISTED`` of them.

Progress: ``progress`` (optional) is called with a ``Progress`` dict after a batch (a receive, a
paced chunk sent, a ``ListMessageMoveTasks`` poll) — at most every ``progress_every_s``, and
always before a pacing wait that long — then once with ``done=True``, also when the replay
fails (``error`` says why). The ops console stores it
(``functions.ops.replays``) so the page can show a long, rate-limited replay as it goes; the CLI
prints it (``--progress``).

``time_budget_s`` (optional) stops a receive-send-delete replay cleanly before that many seconds
have passed (``stopped: "time-budget"``; what was not moved stays in the DLQ, visible again):
``ops-api`` on Lambda passes what is left of its invocation, so a slow rate ends with an answer
instead of a timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from opsdeck.errors import OpsdeckError

MOVE_TASK_UNAVAILABLE = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidParameterValue",
    "AccessDenied",
    "AccessDeniedException",
    "UnknownOperationException",
    "InvalidAction",
    "NotImplemented",
}


MAX_LISTED = 100

#: ``progress`` is called at most this often (the console polls every 0.5 s; storing each batch's
#: report cost a fast local replay of 200 messages ~70 % more time, BENCHMARKS.md)
PROGRESS_EVERY_S = 0.25

#: what ``progress`` receives (the keys of ``Progress``)
Progress = dict[str, Any]


class _Tracker:
    """The counts of one replay, reported to ``progress`` after a batch: at most once every
    ``every_s`` (the first report, the last and one before each pacing wait of ``every_s`` or
    more are always sent, so what a reader sees while the replay waits is current)."""

    def __init__(self, callback: Callable[[Progress], None] | None, dry_run: bool, every_s: float) -> None:
        self.callback = callback
        self.every_s = every_s
        self.sent_at: float | None = None
        self.pending = False
        self.state: Progress = {
            "method": None,
            "dry_run": dry_run,
            "total": None,  # the DLQ's approximate depth when the replay began
            "examined": 0,
            "matched": 0,
            "moved": 0,
            "skipped": 0,  # examined but not moved: no match, past the limit, or a dry run
            "failed": 0,  # SQS refused to send them: they stay in the DLQ
            "message_ids": [],
            "done": False,
            "error": None,
            "stopped": None,
        }

    def report(self, *, force: bool = False, **changes: Any) -> None:
        self.state.update(changes)
        if self.callback is None:
            return
        now = time.monotonic()
        if force or self.state["done"] or self.sent_at is None or now - self.sent_at >= self.every_s:
            self.sent_at, self.pending = now, False
            self.callback({**self.state, "message_ids": list(self.state["message_ids"])})
        else:
            self.pending = True

    def before_wait(self, wait: float) -> None:
        if self.pending and wait >= self.every_s:
            self.report(force=True)


class ReplayError(OpsdeckError):
    """A replay that cannot run as asked (bad filter, rate or limit): 422."""

    status, slug, title = 422, "replay", "Replay refused"


class ReplayFailed(ReplayError):
    """SQS refused a call or could not be reached: 502."""

    status, slug, title = 502, "replay-failed", "Replay failed"


def parse_rate(text: str | float | None) -> float | None:
    """``50``, ``50/s`` → 50.0; None → None."""
    if text is None or isinstance(text, int | float):
        return None if text is None else float(text)
    value = text.strip().removesuffix("/s")
    try:
        rate = float(value)
    except ValueError:
        raise ReplayError(f"invalid rate {text!r}: write N or N/s") from None
    if rate <= 0:
        raise ReplayError(f"invalid rate {text!r}: must be positive")
    return rate


def compile_filter(expression: str | None) -> Callable[[str], bool] | None:
    if not expression:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        compiled = jmespath.compile(expression)
    except JMESPathError as exc:
        raise ReplayError(f"invalid --filter {expression!r}: {str(exc).splitlines()[0]}") from None

    def matches(body: str) -> bool:
        try:
            data = json.loads(body)
        except ValueError:
            return False
        try:
            result = compiled.search(data)
        except JMESPathError:
            return False
        return not (result is None or result is False or result in ("", [], {}))

    return matches


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def _attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names)).get("Attributes", {})


def replay(
    sqs: Any,
    dlq_url: str,
    *,
    to: str | None = None,
    filter: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    rate: float | str | None = None,
    move_task: bool = True,
    wait_s: float = 60.0,
    receive_wait_s: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
    time_budget_s: float | None = None,
) -> dict[str, Any]:
    """Move messages from the DLQ at ``dlq_url`` back (see the module docstring)."""
    tracker = _Tracker(progress, dry_run, progress_every_s)
    try:
        result = _replay(
            sqs,
            dlq_url,
            tracker,
            to=to,
            filter=filter,
            limit=limit,
            dry_run=dry_run,
            rate=rate,
            move_task=move_task,
            wait_s=wait_s,
            receive_wait_s=receive_wait_s,
            sleep=sleep,
            deadline=None if time_budget_s is None else time.monotonic() + time_budget_s,
        )
    except OpsdeckError as exc:
        tracker.report(done=True, error=exc.detail)
        raise
    except Exception as exc:
        tracker.report(done=True, error=type(exc).__name__)
        raise
    tracker.report(done=True, matched=result["matched"], moved=result["moved"], stopped=result.get("stopped"))
    return result


def _replay(
    sqs: Any,
    dlq_url: str,
    tracker: _Tracker,
    *,
    to: str | None,
    filter: str | None,
    limit: int | None,
    dry_run: bool,
    rate: float | str | None,
    move_task: bool,
    wait_s: float,
    receive_wait_s: int,
    sleep: Callable[[float], None],
    deadline: float | None,
) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    matches = compile_filter(filter)
    per_second = parse_rate(rate)
    if limit is not None and limit < 0:
        raise ReplayError("--limit must be >= 0")
    try:
        dlq = _attributes(sqs, dlq_url, "QueueArn", "ApproximateNumberOfMessages")
        to_arn = _attributes(sqs, to, "QueueArn")["QueueArn"] if to else None
        depth = int(dlq.get("ApproximateNumberOfMessages", "0"))
        tracker.state["total"] = depth
        if move_task and matches is None and limit is None and not dry_run:
            try:
                return _move_task(sqs, dlq["QueueArn"], to_arn, per_second, wait_s, sleep, tracker)
            except ClientError as exc:
                if _code(exc) not in MOVE_TASK_UNAVAILABLE:
                    raise
        return _receive_send_delete(
            sqs,
            dlq_url,
            depth,
            tracker,
            to=to,
            matches=matches,
            limit=limit,
            dry_run=dry_run,
            per_second=per_second,
            receive_wait_s=receive_wait_s,
            sleep=sleep,
            deadline=deadline,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ReplayFailed(
            f"SQS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise ReplayFailed(f"SQS is unreachable: {exc}") from None


def _move_task(
    sqs: Any,
    source_arn: str,
    to_arn: str | None,
    per_second: float | None,
    wait_s: float,
    sleep: Callable,
    tracker: _Tracker,
) -> dict[str, Any]:
    params: dict[str, Any] = {"SourceArn": source_arn}
    if to_arn:
        params["DestinationArn"] = to_arn
    if per_second:
        params["MaxNumberOfMessagesPerSecond"] = max(1, min(500, int(per_second)))
    handle = sqs.start_message_move_task(**params)["TaskHandle"]
    deadline = time.monotonic() + wait_s
    task: dict[str, Any] = {}
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        task = next((t for t in results if t.get("TaskHandle") == handle), results[0] if results else {})
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        tracker.report(
            method="move-task",
            matched=int(task.get("ApproximateNumberOfMessagesToMove", 0)),
            moved=moved,
            examined=moved,
        )
        if task.get("Status") != "RUNNING" or time.monotonic() >= deadline:
            break
        sleep(1.0)
    return {
        "matched": int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        "moved": int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        "method": "move-task",
        "status": task.get("Status", "UNKNOWN"),
        "task": handle,
        **({"failure": task["FailureReason"]} if task.get("FailureReason") else {}),
    }


def _receive_send_delete(
    sqs: Any,
    dlq_url: str,
    depth: int,
    tracker: _Tracker,
    *,
    to: str | None,
    matches: Callable[[str], bool] | None,
    limit: int | None,
    dry_run: bool,
    per_second: float | None,
    receive_wait_s: int,
    sleep: Callable[[float], None],
    deadline: float | None,
) -> dict[str, Any]:
    held: dict[str, str] = {}  # messageId → latest receipt handle, released at the end
    seen: set[str] = set()
    urls: dict[str, str] = {}
    matched = moved = failed = empty = 0
    listed: list[str] = []
    started = time.monotonic()
    fallback: list[str] | None = None
    stopped: str | None = None

    def report() -> None:
        tracker.report(
            method="receive-send-delete",
            examined=len(seen),
            matched=matched,
            moved=moved,
            failed=failed,
            skipped=len(seen) - moved - failed,
            message_ids=listed,
        )

    def out_of_time(wait: float = 0.0) -> bool:
        return deadline is not None and time.monotonic() + wait >= deadline

    def destination(message: dict[str, Any]) -> str:
        nonlocal fallback
        if to:
            return to
        arn = message.get("Attributes", {}).get("DeadLetterQueueSourceArn")
        if arn:
            if arn not in urls:
                parts = arn.split(":")
                urls[arn] = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            return urls[arn]
        if fallback is None:
            fallback = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
        if len(fallback) != 1:
            raise ReplayError(
                f"message {message['MessageId']} does not say which queue it came from and the DLQ has "
                f"{len(fallback)} source queues: pass --to"
            )
        return fallback[0]

    try:
        while len(seen) < depth and (limit is None or matched < limit):
            if out_of_time():
                stopped = "time-budget"
                break
            response = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=receive_wait_s,
                VisibilityTimeout=300,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                empty += 1
                if empty >= 2:
                    break
                continue
            empty = 0
            chosen: dict[str, list[dict[str, Any]]] = {}
            for message in messages:
                mid = message["MessageId"]
                if mid in seen or (limit is not None and matched >= limit):
                    held[mid] = message["ReceiptHandle"]
                    seen.add(mid)
                    continue
                seen.add(mid)
                if matches is not None and not matches(message.get("Body", "")):
                    held[mid] = message["ReceiptHandle"]
                    continue
                matched += 1
                if dry_run and len(listed) < MAX_LISTED:
                    listed.append(mid)
                if dry_run:
                    held[mid] = message["ReceiptHandle"]
                    continue
                chosen.setdefault(destination(message), []).append(message)
            report()
            step = max(1, min(10, int(per_second))) if per_second else 10
            for url, batch in chosen.items():
                for start in range(0, len(batch), step):
                    chunk = batch[start : start + step]
                    wait = 0.0
                    if per_second:  # at most per_second messages per second since we began
                        due = started + (moved + failed + len(chunk)) / per_second
                        wait = max(0.0, due - time.monotonic())
                    if stopped or out_of_time(wait):  # not sent: back to the DLQ at the end
                        stopped = "time-budget"
                        held.update((m["MessageId"], m["ReceiptHandle"]) for m in chunk)
                        continue
                    if wait > 0:
                        tracker.before_wait(wait)
                        sleep(wait)
                    sent = _send_and_delete(sqs, dlq_url, url, chunk, held)
                    moved += len(sent)
                    failed += len(chunk) - len(sent)
                    listed.extend(sent[: MAX_LISTED - len(listed)])
                    report()
            if stopped:
                break
    finally:
        _release(sqs, dlq_url, held)
    return {
        "matched": matched,
        "moved": moved,
        "method": "receive-send-delete",
        "scanned": len(seen),
        "message_ids": listed,
        **({"failed": failed} if failed else {}),
        **({"stopped": stopped} if stopped else {}),
    }


def _send_and_delete(
    sqs: Any, dlq_url: str, url: str, batch: list[dict[str, Any]], held: dict[str, str]
) -> list[str]:
    """Send ``batch`` to ``url``, delete what was sent from the DLQ; the ids of the moved messages."""
    entries = []
    fifo = url.endswith(".fifo")
    for i, message in enumerate(batch):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in message.get("MessageAttributes", {}).items()
        }
        if attributes:
            entry["MessageAttributes"] = attributes
        if fifo:
            entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "replay")
            entry["MessageDeduplicationId"] = message["MessageId"]
        entries.append(entry)
    result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    sent = {int(s["Id"]) for s in result.get("Successful", [])}
    for failure in result.get("Failed", []):
        message = batch[int(failure["Id"])]
        held[message["MessageId"]] = message["ReceiptHandle"]
    if sent:
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": batch[i]["ReceiptHandle"]} for i in sorted(sent)],
        )
    return [batch[i]["MessageId"] for i in sorted(sent)]


def _release(sqs: Any, dlq_url: str, held: dict[str, str]) -> None:
    """Make the messages we looked at but did not move visible again."""
    handles = list(held.values())
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)
                ],
            )
        except Exception:  # they reappear after the visibility timeout anyway
            return
