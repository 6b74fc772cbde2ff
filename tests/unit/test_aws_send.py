"""``opsdeck.aws.send_messages``: batches of 10, sequential or several in flight, nothing lost."""

from __future__ import annotations

import json

import pytest

from tests.support import env


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_message_arrives_once(aws, concurrency):
    import boto3

    from opsdeck import aws as opsdeck_aws

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="ops-test-jobs")["QueueUrl"]
    with env(OPS_TEST_JOBS_QUEUE_URL=url):
        sent = opsdeck_aws.send_messages(
            "ops-test-jobs", [{"n": i} for i in range(57)], concurrency=concurrency
        )
    assert sent == 57
    seen = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        seen += [json.loads(m["Body"])["n"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    assert sorted(seen) == list(range(57))
