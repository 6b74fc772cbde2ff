"""``product-monitor-worker``: one ingest job per SQS record (queue ``product-monitor-jobs``).

Thin entry point: the body ``{"job_id", "run_id"}`` is validated, ``ingest.process_job`` does
the work, and Powertools' ``BatchProcessor`` reports failures as ``batchItemFailures`` — a bad
record (not JSON, unknown job) fails alone and reaches ``product-monitor-jobs-dlq`` after
``maxReceiveCount`` receives; an upstream failure is retried by redelivery (visibility
timeout); on the last receive the job is marked ``failed`` in its run before the message
goes to the DLQ. A duplicate delivery of a finished job is acknowledged and changes nothing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import BaseModel, ConfigDict

from opsdeck.lazy import lazy_import
from opsdeck.observability import entry, logger

ingest = lazy_import(
    "functions.product_monitor.ingest"
)  # SQLAlchemy, httpx and the client load with the first job

#: stop starting Apify polls this long before Lambda's timeout (the run is resumed on redelivery)
DEADLINE_MARGIN_S = 30.0


class JobMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: uuid.UUID
    run_id: uuid.UUID | None = None


def _max_receives() -> int:
    from functions.catalog import by_name

    return by_name()["product-monitor-worker"].trigger.max_receive_count  # type: ignore[union-attr]


@entry("queue")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else 900.0
    deadline = time.monotonic() + max(1.0, remaining_s - DEADLINE_MARGIN_S)
    max_receives = _max_receives()
    outcomes: list[dict[str, Any]] = []

    def one(record: Any) -> None:
        try:
            message = JobMessage.model_validate_json(record.body)
            receives = int(record.attributes.approximate_receive_count or 1)
            outcome = ingest.process_job(
                message.job_id, last_attempt=receives >= max_receives, deadline=deadline
            )
        except Exception as exc:
            reason = (
                getattr(exc, "detail", None) or str(exc).splitlines()[0][:300]
                if str(exc)
                else type(exc).__name__
            )
            logger.warning("ingest job failed", extra={"message_id": record.message_id, "reason": reason})
            raise
        outcomes.append(outcome.__dict__)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    result = process_partial_response(event=event, record_handler=one, processor=processor)
    for outcome in outcomes:
        logger.info("ingest job", extra=outcome)
    return result
