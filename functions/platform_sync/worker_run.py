"""The worker's batch processing (database, SQS, outbound HTTP), loaded on first use."""

from __future__ import annotations

import contextvars
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from opsdeck import aws, db
from opsdeck.errors import ConfigError
from opsdeck.observability import logger
from opsdeck.outbound import OutboundRefused, guarded_client
from opsdeck.settings import secret

from . import jobs, metrics, repository
from .domain import MAX_ATTEMPTS, classify_status, retry_delay_s, summarize, valid_job_id
from .validation import secret_allowed, secret_prefix

#: how long a claimed job is owned before another delivery may take it over (> any call)
LEASE_S = 90.0
CALL_THREADS = 10
SECRET_MAX_AGE_S = 60
USER_AGENT = "opsdeck-platform-sync/1.0"

_client: httpx.Client | None = None
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def client() -> httpx.Client:
    global _client, _pool
    if _client is None:
        with _lock:
            if _client is None:
                _pool = ThreadPoolExecutor(max_workers=CALL_THREADS, thread_name_prefix="platform-call")
                _client = guarded_client(
                    timeout=httpx.Timeout(10.0, connect=3.0),
                    headers={"user-agent": USER_AGENT, "content-type": "application/json"},
                )
    return _client


def reset() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def max_receive_count() -> int:
    return int(os.environ.get("PLATFORM_SYNC_MAX_RECEIVE_COUNT", MAX_ATTEMPTS))


@dataclass
class Call:
    outcome: str
    retry: bool
    started_at: datetime
    duration_ms: float
    http_status: int | None = None
    summary: str | None = None
    error: str | None = None


def _auth_headers(platform: Any) -> dict[str, str]:
    if not platform.auth_secret_ref:
        return {}
    if not secret_allowed(platform.auth_secret_ref):
        raise ConfigError(f"secret {platform.auth_secret_ref!r} is outside {secret_prefix()!r}")
    value = secret(platform.auth_secret_ref, max_age=SECRET_MAX_AGE_S)
    token = value.get("value") or value.get("token")
    if not isinstance(token, str) or not token:
        raise ConfigError(f"secret {platform.auth_secret_ref!r} has no 'value'")
    return {platform.auth_header or "authorization": token}


def call_platform(claimed: repository.Claimed) -> Call:
    platform = claimed.platform
    started_at = datetime.now(UTC)
    began = time.perf_counter()

    def done(outcome: str, retry: bool, **kw: Any) -> Call:
        return Call(outcome, retry, started_at, (time.perf_counter() - began) * 1000, **kw)

    if platform.deleted_at is not None:
        return done("failed", False, error="platform deleted")
    path = (platform.endpoints or {}).get(claimed.task_type)
    if not isinstance(path, str):
        return done("failed", False, error=f"no {claimed.task_type} endpoint")
    url = platform.base_url.rstrip("/") + "/" + path.lstrip("/")
    timeout = httpx.Timeout(
        platform.read_timeout_s, connect=platform.connect_timeout_s, write=platform.read_timeout_s, pool=5.0
    )
    try:
        headers = {"idempotency-key": claimed.job_id, **_auth_headers(platform)}
        body = {"job_id": claimed.job_id, "task_type": claimed.task_type, "attempt": claimed.attempt}
        response = client().post(url, content=json.dumps(body), headers=headers, timeout=timeout)
    except OutboundRefused as exc:
        return done("refused", False, error=exc.detail)
    except ConfigError as exc:
        return done("failed", False, error=exc.detail)
    except httpx.ReadTimeout:
        return done("timed_out", True, error=f"no response within {platform.read_timeout_s:g} s")
    except httpx.RequestError as exc:  # connect errors and timeouts, protocol errors
        return done("unavailable", True, error=f"{type(exc).__name__}: {str(exc)[:200]}")
    verdict = classify_status(response.status_code)
    return done(
        verdict.outcome,
        verdict.retry,
        http_status=response.status_code,
        summary=summarize(response.text),
        error=verdict.error,
    )


def _parse(record: dict[str, Any]) -> str | None:
    try:
        body = json.loads(record["body"])
        job_id = body["job_id"]
    except (KeyError, TypeError, ValueError):
        return None
    return job_id if isinstance(job_id, str) and valid_job_id(job_id) else None


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    except ValueError:
        return 1


def _set_visibility(record: dict[str, Any], seconds: int) -> None:
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=aws.queue_url(jobs.QUEUE),
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=seconds,
        )
    except Exception as exc:  # the message then comes back after the queue's visibility timeout
        logger.warning("visibility change failed", extra={"error": type(exc).__name__})


def _defer(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send deferred messages again with a delay; the records that could not be re-sent."""
    if not records:
        return []
    sqs, url = aws.client("sqs"), aws.queue_url(jobs.QUEUE)
    failed: list[dict[str, Any]] = []
    for start in range(0, len(records), 10):
        chunk = records[start : start + 10]
        entries = [
            {"Id": str(i), "MessageBody": r["body"], "DelaySeconds": random.randint(5, 15)}  # noqa: S311
            for i, r in enumerate(chunk)
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            failed += [chunk[int(f["Id"])] for f in response.get("Failed", [])]
        except Exception:
            failed += chunk
    return failed


def process(records: list[dict[str, Any]]) -> dict[str, Any]:
    failures: list[str] = []
    by_job: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        job_id = _parse(record)
        if job_id is None:
            logger.warning("malformed job message", extra={"message_id": record.get("messageId")})
            failures.append(record["messageId"])
        else:
            by_job.setdefault(job_id, []).append(record)
    if not by_job:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
    # a duplicate in the same batch is acknowledged: the first copy runs the job
    first = {job_id: recs[0] for job_id, recs in by_job.items()}

    with db.transaction() as conn:
        fresh = {j for j, r in first.items() if _receive_count(r) == 1}
        claimed, skipped = repository.claim(conn, list(first), LEASE_S, fresh=fresh)

    deferred = [first[s.job_id] for s in skipped if s.reason == "busy-limit"]
    for s in skipped:
        if s.reason == "exhausted":  # a failed job redelivered: walk it on to the DLQ
            _set_visibility(first[s.job_id], 0)
            failures.append(first[s.job_id]["messageId"])
    failures += [r["messageId"] for r in _defer(deferred)]

    client()
    assert _pool is not None
    # each call runs in the invocation's context (the local cloud keeps per-function env there)
    futures = [_pool.submit(contextvars.copy_context().run, call_platform, c) for c in claimed]
    calls = [f.result() for f in futures]
    results: list[repository.AttemptResult] = []
    for c, call in zip(claimed, calls, strict=True):
        attempts_allowed = min(c.retry_max_attempts, max_receive_count())
        if call.outcome == "succeeded":
            status = "succeeded"
        elif call.retry and c.attempt < attempts_allowed:
            status = "retrying"
        else:
            status = "failed"
        results.append(
            repository.AttemptResult(
                c.job_id,
                c.attempt,
                call.outcome,
                call.started_at,
                call.duration_ms,
                call.http_status,
                call.summary,
                call.error,
                status,
            )
        )
    with db.transaction() as conn:
        repository.record(conn, results)

    for c, call, result in zip(claimed, calls, results, strict=True):
        record = first[c.job_id]
        if call.outcome == "timed_out":
            metrics.count("JobsTimedOut", c.task_type)
        if result.job_status == "succeeded":
            metrics.count("JobsSucceeded", c.task_type)
        elif result.job_status == "retrying":
            metrics.count("JobsRetried", c.task_type)
            _set_visibility(record, retry_delay_s(c.retry_backoff_s, c.attempt))
            failures.append(record["messageId"])
        else:
            metrics.count("JobsFailed", c.task_type)
            if call.retry:  # exhausted: the message goes on to the DLQ
                _set_visibility(record, 0)
                failures.append(record["messageId"])
        if result.job_status != "succeeded":
            logger.warning(
                "job attempt failed",
                extra={
                    "job_id": c.job_id,
                    "attempt": c.attempt,
                    "outcome": call.outcome,
                    "status": result.job_status,
                    "error": call.error,
                },
            )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failures)]}
