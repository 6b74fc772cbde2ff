"""DLQ replay: StartMessageMoveTask, filter/limit/dry-run/rate, and the receive-send-delete fallback."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from localcloud.replay import ReplayError, replay
from tests.localcloud import handlers
from tests.localcloud.handlers import calls

JOBS, DLQ = "ops-test-jobs", "ops-test-jobs-dlq"


def dead_letter(cloud, *bodies) -> list[str]:
    """Send flaky messages and let them fail into the DLQ."""
    ids = [cloud.send(JOBS, {"flaky": True, **body}) for body in bodies]
    cloud.run_until_idle(max_seconds=3600)
    assert cloud.depth(DLQ) == (len(bodies), 0)
    handlers.FLAKY["failing"] = False
    return ids


def delivered_after_replay(cloud) -> list[dict]:
    before = len(calls("queue", "ops-test-worker"))
    cloud.advance(0)
    return [r for c in calls("queue", "ops-test-worker")[before:] for r in c["event"]["Records"]]


def test_whole_dlq_goes_back_with_a_message_move_task(cloud):
    dead_letter(cloud, {"n": 1}, {"n": 2}, {"n": 3})
    result = cloud.replay(DLQ)
    assert result["method"] == "move-task"
    assert (result["matched"], result["moved"], result["status"]) == (3, 3, "COMPLETED")
    assert cloud.depth(DLQ) == (0, 0)
    records = delivered_after_replay(cloud)
    assert sorted(json.loads(r["body"])["n"] for r in records) == [1, 2, 3]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in records} == {"1"}
    assert cloud.depth(JOBS) == (0, 0)


def test_filter_limit_and_dry_run(cloud):
    dead_letter(cloud, *({"kind": k, "n": i} for i, k in enumerate("ababa")))
    cloud.send(DLQ, "not json at all")
    dry = cloud.replay(DLQ, filter="kind == 'a'", dry_run=True)
    assert (dry["matched"], dry["moved"]) == (3, 0)
    assert cloud.depth(DLQ) == (6, 0)  # everything looked at is visible again

    first = cloud.replay(DLQ, filter="kind == 'a'", limit=2)
    assert (first["matched"], first["moved"], first["method"]) == (2, 2, "receive-send-delete")
    assert cloud.depth(DLQ) == (4, 0)
    assert cloud.depth(JOBS) == (2, 0)
    rest = cloud.replay(DLQ, filter="kind == 'a'")
    assert (rest["matched"], rest["moved"]) == (1, 1)
    records = delivered_after_replay(cloud)
    assert sorted(json.loads(r["body"])["n"] for r in records) == [0, 2, 4]
    remaining = {m["Body"] for m in cloud.peek(DLQ)}
    assert remaining == {
        '{"flaky":true,"kind":"b","n":1}',
        '{"flaky":true,"kind":"b","n":3}',
        "not json at all",
    }


def test_replay_to_another_queue_keeps_body_and_attributes(cloud):
    cloud.send(JOBS, {"flaky": True}, attributes={"origin": "test"})
    cloud.run_until_idle(max_seconds=3600)
    result = cloud.replay(DLQ, to="ops-test-batches", filter="flaky")
    assert (result["matched"], result["moved"]) == (1, 1)
    [message] = cloud.peek("ops-test-batches")
    assert message["Body"] == '{"flaky":true}'
    assert message["MessageAttributes"]["origin"] == {"DataType": "String", "StringValue": "test"}


def test_bad_filter_is_one_clear_error(cloud):
    with pytest.raises(ReplayError, match="invalid --filter 'kind =='"):
        cloud.replay(DLQ, filter="kind ==")


def sqs_client(cloud):
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=cloud.aws_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_rate_paces_the_sends(cloud):
    dead_letter(cloud, *({"n": i} for i in range(5)))
    due: list[float] = []  # when each chunk may leave: the wait asked for + when it was asked
    before = time.monotonic()
    result = replay(
        sqs_client(cloud),
        cloud.queue_url(DLQ),
        filter="n >= `0`",
        rate="2/s",
        receive_wait_s=0,
        sleep=lambda wait: due.append(time.monotonic() + wait),
    )
    assert (result["matched"], result["moved"]) == (5, 5)
    # 2 messages per second from the start: chunks of 2, 2, 1 may leave at 1 s, 2 s, 2.5 s. Measured
    # as due times, not as waits, so that slow SQS calls on a loaded machine do not shift them.
    assert [d - due[0] for d in due] == pytest.approx([0.0, 1.0, 1.5], abs=0.01)
    assert before + 1.0 <= due[0] <= time.monotonic() + 1.0


def test_progress_is_reported_after_every_batch_then_once_done(cloud):
    ids = dead_letter(cloud, *({"n": i} for i in range(5)))
    seen: list[dict] = []
    result = replay(
        sqs_client(cloud),
        cloud.queue_url(DLQ),
        filter="n >= `0`",
        rate="2/s",
        receive_wait_s=0,
        sleep=lambda wait: None,
        progress=seen.append,
        progress_every_s=0,
    )
    assert (result["matched"], result["moved"]) == (5, 5)
    # the receive (all five examined, none moved yet), each paced chunk of 2, 2, 1, then done
    assert [(p["examined"], p["matched"], p["moved"], p["done"]) for p in seen] == [
        (5, 5, 0, False),
        (5, 5, 2, False),
        (5, 5, 4, False),
        (5, 5, 5, False),
        (5, 5, 5, True),
    ]
    assert [len(p["message_ids"]) for p in seen] == [0, 2, 4, 5, 5]
    assert sorted(seen[-1]["message_ids"]) == sorted(ids) == sorted(result["message_ids"])
    assert {(p["method"], p["total"], p["failed"], p["error"]) for p in seen} == {
        ("receive-send-delete", 5, 0, None)
    }
    assert seen[1]["skipped"] == 3 and seen[-1]["skipped"] == 0  # examined, not (yet) moved


def test_progress_is_reported_at_most_every_so_often_but_always_before_a_pacing_wait(cloud):
    dead_letter(cloud, *({"n": i} for i in range(5)))

    def moved(**options) -> list[tuple[int, bool]]:
        seen: list[dict] = []
        replay(
            sqs_client(cloud),
            cloud.queue_url(DLQ),
            filter="n >= `0`",
            dry_run=True,
            receive_wait_s=0,
            sleep=lambda wait: None,
            progress=seen.append,
            **options,
        )
        return [(p["examined"], p["done"]) for p in seen]

    # fast: the first report, then none for 10 s, then done
    assert moved(progress_every_s=10) == [(5, False), (5, True)]
    seen: list[dict] = []
    replay(
        sqs_client(cloud),
        cloud.queue_url(DLQ),
        filter="n >= `0`",
        rate="2/s",  # waits of 1 s (the stubbed sleep returns at once: the clock hardly moves)
        receive_wait_s=0,
        sleep=lambda wait: None,
        progress=seen.append,
        progress_every_s=0.5,
    )
    # what was moved before each wait of >= 0.5 s is reported before it; the last chunk only with done
    assert [(p["moved"], p["done"]) for p in seen] == [(0, False), (2, False), (4, False), (5, True)]


def test_progress_of_a_dry_run_and_of_a_refused_replay(cloud):
    dead_letter(cloud, {"kind": "a"}, {"kind": "b"})
    seen: list[dict] = []
    dry = cloud.replay(DLQ, filter="kind == 'a'", dry_run=True, progress=seen.append)
    assert seen[-1] == {
        "method": "receive-send-delete",
        "dry_run": True,
        "total": 2,
        "examined": 2,
        "matched": 1,
        "moved": 0,
        "skipped": 2,
        "failed": 0,
        "message_ids": dry["message_ids"],
        "done": True,
        "error": None,
        "stopped": None,
    }
    refused: list[dict] = []
    with pytest.raises(ReplayError):
        cloud.replay(DLQ, filter="kind ==", progress=refused.append)
    [report] = refused
    assert report["done"] is True and report["error"].startswith("invalid --filter 'kind =='")
    whole: list[dict] = []
    cloud.replay(DLQ, progress=whole.append)  # a message move task: reported as SQS reports it
    assert whole[-1]["method"] == "move-task" and whole[-1]["done"] is True
    assert (whole[-1]["matched"], whole[-1]["moved"]) == (2, 2)


def test_a_time_budget_stops_a_paced_replay_cleanly(cloud):
    dead_letter(cloud, *({"n": i} for i in range(4)))
    seen: list[dict] = []
    result = replay(
        sqs_client(cloud),
        cloud.queue_url(DLQ),
        filter="n >= `0`",
        rate="2/s",
        receive_wait_s=0,
        time_budget_s=1.5,  # the first chunk of 2 leaves at 1 s, the second would at 2 s
        progress=seen.append,
    )
    assert (result["matched"], result["moved"], result["stopped"]) == (4, 2, "time-budget")
    assert seen[-1]["done"] and seen[-1]["stopped"] == "time-budget" and seen[-1]["moved"] == 2
    assert cloud.depth(DLQ) == (2, 0)  # what was not moved is visible again, nothing lost
    assert cloud.depth(JOBS) == (2, 0)


def test_falls_back_to_receive_send_delete_where_move_tasks_are_unavailable(cloud):
    """Queues outside the catalog are plain moto queues, which have no message move tasks."""
    sqs = sqs_client(cloud)
    dlq_url = sqs.create_queue(QueueName="plain-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    src_url = sqs.create_queue(
        QueueName="plain",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})},
    )["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"n": i}))
    result = replay(sqs, dlq_url, receive_wait_s=0)
    assert result["method"] == "receive-send-delete"
    assert (result["matched"], result["moved"]) == (3, 3)
    attrs = sqs.get_queue_attributes(QueueUrl=src_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "3"


def test_sqs_api_on_catalog_queues_is_the_engine(cloud):
    """The AWS CLI/boto3 see the same queues the consumers use: counts, receive, delete, attributes."""
    sqs = sqs_client(cloud)
    urls = sqs.list_queues()["QueueUrls"]
    assert cloud.queue_url(JOBS) in urls and cloud.queue_url("ops-test-ordered.fifo") in urls
    attrs = sqs.get_queue_attributes(QueueUrl=cloud.queue_url(JOBS), AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:ops-test-jobs-dlq",
        "maxReceiveCount": 3,
    }
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=cloud.queue_url(DLQ), AttributeNames=["All"])["Attributes"]
    assert json.loads(dlq_attrs["RedriveAllowPolicy"])["sourceQueueArns"] == [
        "arn:aws:sqs:us-east-1:000000000000:ops-test-jobs"
    ]
    sqs.send_message(
        QueueUrl=cloud.queue_url(DLQ),
        MessageBody="hello",
        MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}},
    )
    counts = sqs.get_queue_attributes(
        QueueUrl=cloud.queue_url(DLQ), AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == "1"
    [message] = sqs.receive_message(
        QueueUrl=cloud.queue_url(DLQ), MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    assert message["Body"] == "hello"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["MessageAttributes"]["a"]["StringValue"] == "b"
    assert cloud.depth(DLQ) == (0, 1)
    sqs.delete_message(QueueUrl=cloud.queue_url(DLQ), ReceiptHandle=message["ReceiptHandle"])
    assert cloud.depth(DLQ) == (0, 0)
    with pytest.raises(sqs.exceptions.ClientError, match="MessageGroupId"):
        sqs.send_message(QueueUrl=cloud.queue_url("ops-test-ordered.fifo"), MessageBody="x")
    with pytest.raises(sqs.exceptions.ClientError, match=r"ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=cloud.queue_url(DLQ), ReceiptHandle="garbage")
