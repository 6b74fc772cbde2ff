"""Queues: an SQS queue + DLQ per catalog ``Queue``, and its event source mapping.

* Source queue ``<stack>-<name>`` (``.fifo`` kept): the catalog's visibility timeout and
  retention, SSE (SQS-managed keys), TLS-only access policy, redrive to its DLQ after
  ``max_receive_count`` receives. FIFO queues use content-based deduplication, so senders
  may omit deduplication ids.
* DLQ ``<stack>-<name>-dlq``: keeps messages 14 days — longer than the source, because a
  message keeps its original enqueue time when it is moved — and a ``RedriveAllowPolicy``
  admitting only its source queue (the ARN is built from the name, so source → DLQ → source
  is no reference cycle).
* Event source mapping: batch size, batching window and maximum concurrency from the catalog,
  always ``ReportBatchItemFailures`` (``opsdeck.queue.consume`` returns batchItemFailures).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.catalog import Function, Queue

from .names import Names

DLQ_RETENTION_S = 14 * 24 * 3600  # SQS's maximum


class CatalogQueueError(ValueError):
    """A catalog queue cannot be deployed as declared."""


def catalog_queues(functions: tuple[Function, ...]) -> list[tuple[Queue, Function]]:
    return [(f.trigger, f) for f in functions if isinstance(f.trigger, Queue)]


class Queues(Construct):
    def __init__(self, scope: Construct, id: str, *, functions: tuple[Function, ...], names: Names) -> None:
        super().__init__(scope, id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        self.consumers: dict[str, Function] = {}
        for q, function in catalog_queues(functions):
            if q.retention_s >= DLQ_RETENTION_S:
                raise CatalogQueueError(
                    f"queue {q.name!r}: retention_s must be below 14 days "
                    "so that its DLQ keeps messages longer"
                )
            source_arn = Stack.of(self).format_arn(service="sqs", resource=names.queue(q))
            dlq = sqs.Queue(
                self,
                f"{q.name}-dlq",
                queue_name=names.dlq(q),
                fifo=q.fifo or None,
                retention_period=Duration.seconds(DLQ_RETENTION_S),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                redrive_allow_policy=sqs.RedriveAllowPolicy(
                    redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                    source_queues=[sqs.Queue.from_queue_arn(self, f"{q.name}-source", source_arn)],
                ),
            )
            queue = sqs.Queue(
                self,
                q.name,
                queue_name=names.queue(q),
                fifo=q.fifo or None,
                content_based_deduplication=True if q.fifo else None,
                visibility_timeout=Duration.seconds(q.visibility_timeout_s),
                retention_period=Duration.seconds(q.retention_s),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=q.max_receive_count, queue=dlq),
            )
            self.queues[q.name] = queue
            self.dlqs[q.name] = dlq
            self.consumers[q.name] = function

    def connect(self, lambdas: dict[str, lambda_.IFunction]) -> None:
        """Event source mappings: each queue → the function the catalog says it triggers."""
        for name, function in self.consumers.items():
            q = function.trigger
            assert isinstance(q, Queue)
            lambdas[function.name].add_event_source(
                sources.SqsEventSource(
                    self.queues[name],
                    batch_size=q.batch_size,
                    max_batching_window=Duration.seconds(q.batching_window_s)
                    if q.batching_window_s
                    else None,
                    max_concurrency=q.max_concurrency,
                    report_batch_item_failures=True,
                    enabled=True,
                )
            )
