"""Queues, DLQs and event source mappings as the issue and AWS's guidance require."""

from __future__ import annotations

import json

from functions.catalog import Queue
from infra_cdk.queues import DLQ_RETENTION_S
from tests.infra.conftest import Synth
from tests.infra.test_catalog_agreement import _ref_target


def _mapping(synth: Synth, function: str) -> dict:
    fn_id = synth.target_id(function)
    (mapping,) = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if _ref_target(m["Properties"]["FunctionName"]) == fn_id
    ]
    return mapping


def test_every_mapping_reports_batch_item_failures(synth: Synth):
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert all(m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)


def test_mappings_follow_the_catalog(synth: Synth):
    for f in synth.functions:
        if not isinstance(f.trigger, Queue):
            continue
        q = f.trigger
        mapping = _mapping(synth, f.name)
        assert mapping["BatchSize"] == q.batch_size
        assert mapping.get("MaximumBatchingWindowInSeconds", 0) == q.batching_window_s
        assert mapping.get("ScalingConfig", {}).get("MaximumConcurrency") == q.max_concurrency
        assert mapping["Enabled"] is True


def test_queue_and_dlq_settings(synth: Synth):
    for f in synth.functions:
        if not isinstance(f.trigger, Queue):
            continue
        q = f.trigger
        source_id = synth.queue_id(synth.name("queue", q))
        dlq_id = synth.queue_id(synth.name("dlq", q))
        source = synth.resources[source_id]["Properties"]
        dlq = synth.resources[dlq_id]["Properties"]
        # visibility timeout from the catalog, and at least 6x the function timeout (AWS guidance)
        assert source["VisibilityTimeout"] == q.visibility_timeout_s
        assert source["VisibilityTimeout"] >= 6 * f.timeout_s
        assert source["MessageRetentionPeriod"] == q.retention_s
        assert source["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": q.max_receive_count,
        }
        # the DLQ outlives the source's retention: moved messages keep their enqueue time
        assert dlq["MessageRetentionPeriod"] == DLQ_RETENTION_S > source["MessageRetentionPeriod"]
        assert dlq["RedriveAllowPolicy"]["redrivePermission"] == "byQueue"
        (allowed,) = dlq["RedriveAllowPolicy"]["sourceQueueArns"]
        assert json.dumps(allowed).endswith(f':{synth.name("queue", q)}"]]}}')
        for props in (source, dlq):
            assert props["SqsManagedSseEnabled"] is True
            assert props.get("FifoQueue") == (True if q.fifo else None)
        if q.fifo:
            assert source["ContentBasedDeduplication"] is True
            assert source["QueueName"].endswith(".fifo") and dlq["QueueName"].endswith(".fifo")


def test_queues_refuse_plain_http(synth: Synth):
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    protected = set()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
        protected |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert protected == set(synth.of_type("AWS::SQS::Queue"))


def test_a_large_batch_uses_its_batching_window(synthetic: Synth):
    mapping = _mapping(synthetic, "backoffice-consumer")
    assert mapping["BatchSize"] == 10_000
    assert mapping["MaximumBatchingWindowInSeconds"] == 5


def test_retention_that_leaves_the_dlq_no_margin_is_refused():
    from dataclasses import replace

    import pytest

    from infra_cdk.app import build_app
    from infra_cdk.queues import CatalogQueueError
    from tests.infra.conftest import SYNTHETIC, SYNTHETIC_BUCKETS

    bad = tuple(
        replace(f, trigger=replace(f.trigger, retention_s=DLQ_RETENTION_S)) if f.name == "ops-worker" else f
        for f in SYNTHETIC
    )
    with pytest.raises(CatalogQueueError, match="ops-work"):
        build_app({"bundle": "false"}, functions=bad, buckets=SYNTHETIC_BUCKETS, nag=False)
