"""boto3 clients, created lazily once per container, and catalog queue helpers.

Clients are built on first use so that moto (tests) and ``AWS_ENDPOINT_URL`` (the
local cloud) are in place by then; boto3 itself costs ~160 ms of import, paid only by
functions that call AWS.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError
from .jsonutil import dumps
from .naming import queue_url_env

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_queue_urls: dict[str, str] = {}


def client(service: str) -> Any:
    """The container's boto3 client for ``service`` (timeouts set, standard retries)."""
    found = _clients.get(service)
    if found is None:
        with _lock:
            found = _clients.get(service)
            if found is None:
                import boto3
                from botocore.config import Config

                extra: dict[str, Any] = {}
                if service == "s3":
                    # SigV4 presigned URLs; path-style against a local endpoint (an IP has no
                    # virtual hosts), virtual-hosted on AWS (path-style is being retired there)
                    local = bool(os.environ.get("AWS_ENDPOINT_URL"))
                    extra = {
                        "signature_version": "s3v4",
                        "s3": {"addressing_style": "path" if local else "virtual"},
                    }
                config = Config(
                    connect_timeout=3,
                    read_timeout=10,
                    retries={"max_attempts": 4, "mode": "standard"},
                    **extra,
                )
                found = boto3.session.Session().client(service, config=config)
                _clients[service] = found
    return found


def reset() -> None:
    with _lock:
        _clients.clear()
        _queue_urls.clear()


def queue_url(queue: str) -> str:
    """URL of catalog queue ``queue``: from the environment, else looked up by name."""
    url = os.environ.get(queue_url_env(queue)) or _queue_urls.get(queue)
    if url:
        return url
    prefix = os.environ.get("OPSDECK_RESOURCE_PREFIX", "")
    try:
        url = client("sqs").get_queue_url(QueueName=prefix + queue)["QueueUrl"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ConfigError(
            f"queue {queue!r}: {queue_url_env(queue)} is not set and lookup failed ({code})"
        ) from None
    _queue_urls[queue] = url
    return url


def send_messages(
    queue: str,
    bodies: Iterable[Any],
    *,
    group_id: str | None = None,
    dedup_ids: Sequence[str] | None = None,
    attributes: Mapping[str, str] | None = None,
    concurrency: int = 1,
) -> int:
    """Send JSON bodies to a catalog queue in batches of 10; returns how many were sent.

    Entries SQS refuses are retried twice; anything still refused raises, so a caller
    never acknowledges work that was not enqueued. ``concurrency`` > 1 sends that many
    batches at a time (threads; boto3 clients are thread-safe): a dispatcher enqueueing
    thousands of messages waits for one round trip per ``concurrency`` batches, not per batch.
    Order between batches is then not kept (standard queues keep none anyway).
    """
    url = queue_url(queue)
    sqs = client("sqs")
    bodies = list(bodies)
    if dedup_ids is not None and len(dedup_ids) != len(bodies):
        raise ValueError(f"{len(dedup_ids)} deduplication ids for {len(bodies)} messages")
    msg_attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
    entries: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": body if isinstance(body, str) else dumps(body)}
        if msg_attrs:
            entry["MessageAttributes"] = msg_attrs
        if group_id is not None:
            entry["MessageGroupId"] = group_id
        if dedup_ids is not None:
            entry["MessageDeduplicationId"] = dedup_ids[i]
        entries.append(entry)
    chunks = [entries[start : start + 10] for start in range(0, len(entries), 10)]

    def send(pending: list[dict[str, Any]]) -> int:
        sent = 0
        for attempt in range(3):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            response = sqs.send_message_batch(QueueUrl=url, Entries=pending)
            sent += len(response.get("Successful", []))
            failed = response.get("Failed", [])
            refused = [f for f in failed if f.get("SenderFault")]
            if refused:  # our fault (too large, bad attribute): resending cannot help
                raise ValueError(f"SQS refused a message for queue {queue!r}: {refused[0].get('Code')}")
            failed_ids = {f["Id"] for f in failed}
            pending = [e for e in pending if e["Id"] in failed_ids]
            if not pending:
                break
        if pending:
            raise RuntimeError(f"SQS did not accept {len(pending)} message(s) for queue {queue!r}")
        return sent

    if concurrency <= 1 or len(chunks) <= 1:
        return sum(send(chunk) for chunk in chunks)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
        return sum(pool.map(send, chunks))  # the first error raises here, after every batch ran
