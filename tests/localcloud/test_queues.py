"""SQS + Lambda event source mapping semantics, as AWS documents them, on the virtual clock."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import pytest

from localcloud.events import md5_of_message_attributes
from tests.localcloud.conftest import START
from tests.localcloud.handlers import calls

JOBS, JOBS_DLQ = "ops-test-jobs", "ops-test-jobs-dlq"


def batches(function: str = "ops-test-worker") -> list[list[dict]]:
    return [c["event"]["Records"] for c in calls("queue", function)]


def bodies(records: list[dict]) -> list[str]:
    return [r["body"] for r in records]


def test_a_message_is_delivered_with_faithful_record_attributes(cloud):
    cloud.advance(7)
    message_id = cloud.send(
        JOBS,
        {"n": 1},
        attributes={
            "kind": "order",
            "priority": {"DataType": "Number", "StringValue": "5"},
            "blob": b"\x00\x01",
        },
    )
    cloud.advance(0)
    [[record]] = batches()
    sent_ms = int((START.timestamp() + 7) * 1000)
    assert record["messageId"] == message_id
    assert record["body"] == '{"n":1}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:000000000000:ops-test-jobs"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(sent_ms)
    assert record["attributes"]["ApproximateFirstReceiveTimestamp"] == str(sent_ms)
    assert record["attributes"]["SenderId"]
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "order",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["priority"]["dataType"] == "Number"
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"
    assert record["md5OfBody"] == hashlib.md5(b'{"n":1}', usedforsecurity=False).hexdigest()
    assert record["md5OfMessageAttributes"] == md5_of_message_attributes(
        {
            "kind": {"DataType": "String", "StringValue": "order"},
            "priority": {"DataType": "Number", "StringValue": "5"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        }
    )
    assert cloud.depth(JOBS) == (0, 0)


def test_md5_of_message_attributes_matches_the_sqs_algorithm():
    # The value SQS returns for this attribute (AWS SDKs verify it the same way).
    attributes = {"attr1": {"DataType": "String", "StringValue": "value1"}}

    expected = hashlib.md5(
        struct.pack("!I", 5)
        + b"attr1"
        + struct.pack("!I", 6)
        + b"String"
        + b"\x01"
        + struct.pack("!I", 6)
        + b"value1",
        usedforsecurity=False,
    ).hexdigest()
    assert md5_of_message_attributes(attributes) == expected


def test_batches_hold_at_most_batch_size_records(cloud):
    for i in range(25):
        cloud.send(JOBS, {"n": i})
    cloud.advance(0)
    assert [len(b) for b in batches()] == [10, 10, 5]
    assert sorted(json.loads(b)["n"] for batch in batches() for b in bodies(batch)) == list(range(25))


def test_reported_failures_return_after_the_visibility_timeout_the_rest_is_deleted(cloud):
    ok1 = cloud.send(JOBS, {"n": 1})
    bad = cloud.send(JOBS, {"n": 2, "fail": True})
    ok2 = cloud.send(JOBS, {"n": 3})
    cloud.advance(0)
    assert cloud.depth(JOBS) == (0, 1)  # the two successes are deleted, the failure is in flight
    cloud.advance(59)
    assert len(batches()) == 1  # invisible for the whole visibility timeout (60 s)
    cloud.advance(1)
    [first, second] = batches()
    assert {r["messageId"] for r in first} == {ok1, bad, ok2}
    [again] = second
    assert again["messageId"] == bad
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert (
        again["attributes"]["ApproximateFirstReceiveTimestamp"]
        == first[1]["attributes"]["ApproximateFirstReceiveTimestamp"]
    )
    journal = [e for e in cloud.journal() if e["function"] == "ops-test-worker"]
    assert journal[0]["outcome"] == "partial"
    assert journal[0]["batch_item_failures"] == [bad]


def test_a_function_error_retries_the_whole_batch(cloud):
    ids = [cloud.send(JOBS, {"n": 1}), cloud.send(JOBS, {"crash": True}), cloud.send(JOBS, {"n": 3})]
    cloud.advance(0)
    assert cloud.depth(JOBS) == (0, 3)
    cloud.advance(60)
    first, second = batches()
    assert [r["messageId"] for r in first] == ids
    assert sorted(r["messageId"] for r in second) == sorted(ids)
    assert {r["attributes"]["ApproximateReceiveCount"] for r in second} == {"2"}
    entry = next(e for e in cloud.journal() if e["function"] == "ops-test-worker")
    assert entry["outcome"] == "error"
    assert entry["error"] == "RuntimeError: worker crashed on purpose"
    assert entry["stack"]


def test_after_max_receive_count_a_message_moves_to_its_dlq(cloud):
    keep = cloud.send(JOBS, {"n": 1})
    poison = cloud.send(JOBS, {"fail": True}, attributes={"kind": "poison"})
    cloud.run_until_idle(max_seconds=600)
    # received maxReceiveCount (3) times, then dead-lettered on the next receive
    assert [r["messageId"] for b in batches() for r in b].count(poison) == 3
    assert [r["messageId"] for b in batches() for r in b].count(keep) == 1
    assert cloud.depth(JOBS) == (0, 0)
    assert cloud.depth(JOBS_DLQ) == (1, 0)
    [dead] = cloud.peek(JOBS_DLQ)
    assert dead["MessageId"] == poison
    assert dead["Body"] == '{"fail":true}'
    assert dead["MessageAttributes"]["kind"]["StringValue"] == "poison"
    assert (
        dead["Attributes"]["DeadLetterQueueSourceArn"] == "arn:aws:sqs:us-east-1:000000000000:ops-test-jobs"
    )
    assert dead["Attributes"]["SentTimestamp"] == str(int(START.timestamp() * 1000))


@pytest.mark.parametrize(
    "response",
    [
        "done",
        {"batchItemFailures": "all"},
        {"batchItemFailures": [{"id": "x"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
    ],
)
def test_a_batch_response_lambda_cannot_accept_fails_the_whole_batch(cloud, response):
    cloud.send(JOBS, {"respond": response})
    cloud.send(JOBS, {"n": 2})
    cloud.advance(0)
    assert cloud.depth(JOBS) == (0, 2)
    [entry] = [e for e in cloud.journal() if e["function"] == "ops-test-worker"]
    assert entry["outcome"] == "invalid-response"


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}])
def test_empty_responses_mean_complete_success(cloud, response):
    cloud.send(JOBS, {"respond": response})
    cloud.advance(0)
    assert cloud.depth(JOBS) == (0, 0)


def test_batching_window_waits_for_a_full_batch_or_the_window(cloud):
    for i in range(3):
        cloud.send("ops-test-batches", {"n": i})
    cloud.advance(4.9)
    assert batches("ops-test-windowed") == []
    assert cloud.depth("ops-test-batches") == (0, 3)  # buffered by the poller: in flight
    cloud.send("ops-test-batches", {"n": 3})
    cloud.advance(0.1)
    [batch] = batches("ops-test-windowed")
    assert len(batch) == 4
    for i in range(50):
        cloud.send("ops-test-batches", {"n": i})
    cloud.advance(0)  # batch size reached: no need to wait for the window
    assert [len(b) for b in batches("ops-test-windowed")] == [4, 50]


def test_fifo_delivers_in_order_per_group_and_deduplicates(cloud):
    q = "ops-test-ordered"
    for i in range(4):
        cloud.send(q, {"g": "a", "n": i}, group_id="a", dedup_id=f"a{i}")
        cloud.send(q, {"g": "b", "n": i}, group_id="b", dedup_id=f"b{i}")
    duplicate = cloud.send(q, {"g": "a", "n": 0, "again": True}, group_id="a", dedup_id="a0")
    cloud.advance(0)
    records = [r for b in batches("ops-test-ordered") for r in b]
    assert len(records) == 8  # the duplicate was accepted but never delivered
    assert duplicate == records[0]["messageId"] or duplicate in {r["messageId"] for r in records}
    for group in ("a", "b"):
        seq = [r for r in records if r["attributes"]["MessageGroupId"] == group]
        assert [r["body"] for r in seq] == [f'{{"g":"{group}","n":{i}}}' for i in range(4)]
        numbers = [int(r["attributes"]["SequenceNumber"]) for r in seq]
        assert numbers == sorted(numbers) and len(seq[0]["attributes"]["SequenceNumber"]) == 20
    for batch in batches("ops-test-ordered"):
        assert len(batch) <= 3
    cloud.advance(301)  # after the 5-minute deduplication interval the same id is new again
    cloud.send(q, {"g": "a", "n": 0}, group_id="a", dedup_id="a0")
    cloud.advance(0)
    assert len([r for b in batches("ops-test-ordered") for r in b]) == 9


def test_fifo_group_is_blocked_while_a_message_is_in_flight(cloud):
    q = "ops-test-ordered"
    cloud.send(q, {"n": 0, "fail": True}, group_id="a", dedup_id="1")
    cloud.send(q, {"n": 1}, group_id="a", dedup_id="2")
    cloud.send(q, {"n": 2}, group_id="b", dedup_id="3")
    cloud.advance(0)
    [first] = batches("ops-test-ordered")
    # handler reported only n=0; n=1 (same group, after it) was deleted as a success by the ESM
    assert [r["body"] for r in first] == ['{"n":0,"fail":true}', '{"n":1}', '{"n":2}']
    cloud.send(q, {"n": 3}, group_id="a", dedup_id="4")
    cloud.advance(30)
    assert len(batches("ops-test-ordered")) == 1  # group a waits for its in-flight message
    cloud.advance(30)
    second = batches("ops-test-ordered")[1]
    assert [r["body"] for r in second] == ['{"n":0,"fail":true}', '{"n":3}']


def test_fifo_requires_a_group_id(cloud):
    from localcloud import LocalCloudError

    with pytest.raises(LocalCloudError, match="MessageGroupId"):
        cloud.send("ops-test-ordered", {"n": 1})


def test_unknown_queue_is_one_clear_error(cloud):
    from localcloud import LocalCloudError

    with pytest.raises(LocalCloudError, match=r"unknown queue 'nope' \(catalog queues: ops-test-batches"):
        cloud.send("nope", "x")


def test_peek_does_not_change_visibility(cloud):
    cloud.send(JOBS_DLQ, {"n": 1})
    first = cloud.peek(JOBS_DLQ)
    assert cloud.peek(JOBS_DLQ) == first
    assert first[0]["Attributes"]["ApproximateReceiveCount"] == "0"
    assert cloud.depth(JOBS_DLQ) == (1, 0)


def test_delayed_messages_become_visible_after_their_delay(cloud):
    cloud.send(JOBS, {"n": 1}, delay_s=30)
    cloud.advance(29)
    assert (batches(), cloud.depth(JOBS)) == ([], (0, 0))  # delayed: neither visible nor in flight
    assert cloud.peek(JOBS)[0]["State"] == "delayed"
    cloud.advance(1)
    assert len(batches()) == 1


def test_messages_expire_after_the_retention_period(cloud):
    cloud.send(JOBS_DLQ, {"n": 1})  # DLQs keep messages 14 days
    cloud.advance(14 * 86400 - 1)
    assert cloud.depth(JOBS_DLQ) == (1, 0)
    cloud.advance(1)
    assert (cloud.depth(JOBS_DLQ), cloud.peek(JOBS_DLQ)) == ((0, 0), [])
