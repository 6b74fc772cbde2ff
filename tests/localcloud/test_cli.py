"""The CLI: one-line errors, sample events, and the commands against a running local cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from functions.catalog import FUNCTIONS
from localcloud.events import event_problems
from opsdeck_cli.main import main
from tests.localcloud import handlers
from tests.localcloud.catalog import CATALOG
from tests.localcloud.conftest import START


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("opsdeck: error: ")
    return lines[0].removeprefix("opsdeck: error: ")


def first(kind: str):
    return next(f for f in FUNCTIONS if f.trigger.kind == kind)


# ------------------------------------------------------------------ bad input


def test_invoke_names_an_unknown_function(capsys, tmp_path):
    assert one_line_error(capsys, "invoke", "ops-apj", "--root", str(tmp_path)) == (
        "unknown function 'ops-apj'; did you mean ops-api?"
    )
    assert one_line_error(capsys, "invoke", "zzz", "--root", str(tmp_path)) == (
        "unknown function 'zzz' (see opsdeck functions)"
    )


def test_invoke_names_a_missing_or_malformed_event_file(capsys, tmp_path):
    root = ["--root", str(tmp_path)]
    missing = tmp_path / "missing.json"
    assert one_line_error(capsys, "invoke", "ops-api", "--event", str(missing), *root) == (
        f"event file {missing} does not exist"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "2.0",')
    assert one_line_error(capsys, "invoke", "ops-api", "--event", str(bad), *root).startswith(
        f"event file {bad} is not valid JSON: "
    )
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"Records": []}))
    assert one_line_error(capsys, "invoke", "ops-api", "--event", str(wrong), *root) == (
        f'{wrong} does not fit ops-api (http): HTTP API events have "version": "2.0"'
    )


def test_events_new_refuses_the_wrong_kind(capsys):
    assert one_line_error(capsys, "events", "new", "sqs", "--function", "ops-api") == (
        "ops-api is triggered by http, not sqs"
    )
    message = one_line_error(capsys, "events", "new", "http", "--function", "ops-api", "--route", "PUT /x")
    assert message.startswith(
        "ops-api has no route 'PUT /x' (routes: GET /ops/health, GET /ops/functions, GET /ops/docs, "
        "GET /ops/docs/{asset}, GET /ops/openapi.json, GET /ops/console, "
    )


def test_queue_commands_need_a_running_cloud_or_aws(capsys, tmp_path):
    assert one_line_error(capsys, "queues", "list", "--root", str(tmp_path)) == (
        f"no local cloud is running in {tmp_path} (start one with opsdeck local up), or pass --aws to use AWS"
    )


# ------------------------------------------------------------------ events new


@pytest.mark.parametrize(("kind", "trigger"), [("http", "http"), ("schedule", "schedule"), ("sqs", "queue")])
def test_events_new_is_shaped_for_the_functions_wiring(capsys, tmp_path, kind, trigger):
    function = first(trigger)
    code, out, _ = run(capsys, "events", "new", kind, "--function", function.name, "--body", '{"a": 1}')
    assert code == 0
    event = json.loads(out)
    assert event_problems(function, event) == []
    if kind == "sqs":
        assert event["Records"][0]["eventSourceARN"].endswith(":" + function.trigger.queue_name)
        assert json.loads(event["Records"][0]["body"]) == {"a": 1}
    if kind == "schedule":
        assert event["detail"] == dict(function.trigger.input)
    target = tmp_path / "events" / "x.json"
    assert run(capsys, "events", "new", kind, "--function", function.name, "-o", str(target))[0] == 0
    assert event_problems(function, json.loads(target.read_text())) == []


def test_events_new_fills_path_parameters_and_jwt_claims(capsys):
    function = next(
        f for f in FUNCTIONS if f.trigger.kind == "http" and any("{" in r.path for r in f.trigger.routes)
    )
    route = next(r for r in function.trigger.routes if "{" in r.path)
    code, out, _ = run(capsys, "events", "new", "http", "--function", function.name, "--route", route.key)
    assert code == 0
    event = json.loads(out)
    assert event["routeKey"] == route.key
    assert event["pathParameters"] and all(v.startswith("sample-") for v in event["pathParameters"].values())
    assert event_problems(function, event) == []


# ------------------------------------------------------- against a running cloud


@pytest.fixture
def running(tmp_path, redis_url) -> Iterator:
    """The test catalog served like ``opsdeck local up`` would (state file, HTTP, endpoint)."""
    from localcloud import LocalCloud
    from localcloud.services import clear_state, write_state

    handlers.CALLS.clear()
    handlers.FLAKY["failing"] = True
    root = tmp_path / ".opsdeck"
    with LocalCloud(
        root=root, redis_url=redis_url, virtual_clock=START, catalog=CATALOG, http=True, deploy=False
    ) as cloud:
        write_state(root, cloud.running_state())
        yield cloud, ["--root", str(root)]
        clear_state(root)


def test_queues_list_send_peek_and_replay(capsys, running):
    cloud, root = running
    code, out, _ = run(
        capsys, "queues", "send", "ops-test-jobs", '{"flaky": true, "kind": "a"}', "--attr", "k=v", *root
    )
    assert code == 0 and len(out.strip()) == 36
    code, out, _ = run(capsys, "queues", "list", *root)
    assert "ops-test-jobs" in out and "ops-test-jobs-dlq" not in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("ops-test-jobs "))
    assert row.split()[1:] == ["1", "0", "0"]
    cloud.run_until_idle(max_seconds=3600)
    code, out, _ = run(capsys, "queues", "peek", "ops-test-jobs-dlq", *root)
    assert '"kind": "a"' in out and "[visible]" in out and "receives=3" in out
    handlers.FLAKY["failing"] = False
    code, out, err = run(
        capsys, "queues", "replay", "ops-test-jobs-dlq", "--filter", "kind == 'a'", "--dry-run", *root
    )
    assert out.strip() == "ops-test-jobs-dlq: matched 1, would move 1 (receive-send-delete)"
    assert err == ""  # progress only when asked
    code, out, err = run(
        capsys, "queues", "replay", "ops-test-jobs-dlq", "--dry-run", "--limit", "1", "--progress", *root
    )
    assert out.strip() == "ops-test-jobs-dlq: matched 1, would move 1 (receive-send-delete)"
    assert err.splitlines() == ["ops-test-jobs-dlq: examined 1/1, matched 1, moved 0"]
    code, out, _ = run(capsys, "queues", "replay", "ops-test-jobs-dlq", *root)
    assert out.strip() == "ops-test-jobs-dlq: matched 1, moved 1 (move-task)"
    assert cloud.depth("ops-test-jobs") == (1, 0)
    assert one_line_error(capsys, "queues", "peek", "nope", *root).startswith(
        "unknown queue 'nope' (catalog queues: "
    )
    assert one_line_error(capsys, "queues", "replay", "ops-test-jobs", *root) == (
        "'ops-test-jobs' is not a dead-letter queue (its DLQ is ops-test-jobs-dlq)"
    )
    assert one_line_error(capsys, "queues", "send", "ops-test-ordered", "x", *root) == (
        "SQS refused the message: The request must contain the parameter MessageGroupId."
    )


def test_fire_log_and_env_against_the_running_cloud(capsys, running):
    cloud, root = running
    code, out, _ = run(capsys, "local", "fire", "ops-test-tick", *root)
    assert (code, json.loads(out)) == (0, {"ticked": "2026-01-05T00:00:00Z"})
    assert one_line_error(capsys, "local", "fire", "ops-test-nightly", *root) == (
        "ops-test-nightly failed: ValueError: scheduled job failed"
    )
    assert one_line_error(capsys, "local", "fire", "nope", *root).startswith("unknown schedule 'nope'")
    code, out, _ = run(capsys, "local", "log", *root)
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "ops-test-tick" in lines[0] and "schedule" in lines[0] and " ok " in lines[0]
    assert "error" in lines[1] and "ValueError: scheduled job failed" in lines[1]
    code, out, _ = run(capsys, "local", "log", "--json", "-n", "1", *root)
    assert json.loads(out)["function"] == "ops-test-nightly"
    code, out, _ = run(capsys, "local", "env", *root)
    assert f"export AWS_ENDPOINT_URL={cloud.aws_url}" in out
    assert "export JWT_ISSUER=opsdeck-local" in out
    assert "# REDIS_URL" in out or "export REDIS_URL" in out


def test_invoke_through_the_running_cloud_and_in_process(
    capsys, tmp_path, database_url, redis_url, committed_db
):
    from localcloud import LocalCloud
    from localcloud.services import clear_state, write_state

    # without a running cloud: a one-shot in-process cloud
    code, out, err = run(capsys, "invoke", "ops-api", "--event", "health", "--root", str(tmp_path / "one"))
    assert code == 0, err
    response = json.loads(out)
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "ok"

    root = tmp_path / "running"
    with LocalCloud(root=root, functions=["ops-api"], http=True, deploy=False) as cloud:
        write_state(root, cloud.running_state())
        code, out, err = run(capsys, "invoke", "ops-api", "--event", "health", "--root", str(root))
        clear_state(root)
        assert code == 0, err
        assert json.loads(out)["statusCode"] == 200
        assert "START RequestId:" in err and "REPORT RequestId:" in err  # the function's log tail
        [entry] = [e for e in cloud.journal() if e["trigger"] == "invoke"]
        assert entry["function"] == "ops-api" and entry["outcome"] == "ok"


def test_replay_against_aws_is_plain_sqs_with_the_stack_prefix(capsys, cloud):
    """``--aws`` goes through ``opsdeck.aws.client("sqs")`` (here: plain moto queues standing in for
    AWS, reached through AWS_ENDPOINT_URL) with ``<stack>-`` queue names."""
    import boto3

    queue = first("queue").trigger
    sqs = boto3.session.Session().client("sqs", endpoint_url=cloud.aws_url, region_name="us-east-1")
    dlq = sqs.create_queue(QueueName=f"opsdeck-prod-{queue.dlq_name}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName=f"opsdeck-prod-{queue.queue_name}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
    )["QueueUrl"]
    for k in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"k": k}))
    code, out, err = run(
        capsys,
        "queues",
        "replay",
        f"{queue.name}-dlq",
        "--aws",
        "--prefix",
        "opsdeck-prod-",
        "--filter",
        "k > `0`",
    )
    assert code == 0, err
    assert out.strip() == f"{queue.name}-dlq: matched 2, moved 2 (receive-send-delete)"
    depth = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "2"
    listed_first = min(f.trigger.queue_name for f in FUNCTIONS if f.trigger.kind == "queue")  # sorted
    assert one_line_error(capsys, "queues", "list", "--aws", "--prefix", "opsdeck-dev-") == (
        f"queue 'opsdeck-dev-{listed_first}' does not exist"
    )
