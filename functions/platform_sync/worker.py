"""``platform-sync-worker``: runs the jobs of ``platform-sync-jobs`` (SQS, DLQ after 3 receives).

Each message is ``{"job_id": …}``. For a batch:

1. **claim** (one transaction, under the task types' row locks): a job that succeeded or was
   canceled is acknowledged without running (duplicate delivery, replay); one running
   elsewhere with a live lease is acknowledged too (its own message retries it); one whose
   task type is at ``max_concurrent_jobs`` across every worker is sent back with a short delay
   (a new message, so waiting costs no receive); a job that failed runs again only from a
   fresh message (a DLQ replay), a redelivery of it walks on to the DLQ;
2. **call** the claimed platforms concurrently: ``POST <base_url><endpoint>`` through
   ``opsdeck.outbound`` (https, checked resolved address, no redirects) with the platform's
   connect/read timeouts, ``Idempotency-Key: <job id>``, and its auth header read from
   Secrets Manager at call time (cached 60 s);
3. **record** every attempt and each job's new status (two set-based statements), then answer
   SQS: done → deleted; to retry (read timeout → ``timed_out``, connection error →
   ``unavailable``, 5xx/429 → ``server_error``, while attempts remain under the task type's
   policy) → the message's visibility is set to the policy's backoff and it is reported as a
   batch item failure; exhausted → the job is ``failed`` and the message is reported failed
   (visibility 0) until SQS moves it to the DLQ after ``maxReceiveCount``; 4xx → ``failed``
   at once; a refused URL (SSRF guard) → ``refused``, failed, never called.

A malformed message fails alone (``batchItemFailures``) and reaches the DLQ.
"""

from __future__ import annotations

from typing import Any

from opsdeck.lazy import lazy_import
from opsdeck.observability import entry

run = lazy_import("functions.platform_sync.worker_run")


@entry("queue")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run.process(event.get("Records") or [])
