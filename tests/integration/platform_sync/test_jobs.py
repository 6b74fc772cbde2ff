"""Dispatcher ticks, the worker and scheduler control, through their Lambda entry points."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import text

from tests.integration.platform_sync.conftest import VIEWER


def statuses(ps, job_ids):
    return [ps.job(j)["status"] for j in job_ids]


def test_a_tick_enqueues_one_job_per_active_platform_and_a_repeated_tick_none(ps, minute):
    a, b = ps.platform("alpha"), ps.platform("beta")
    ps.platform("gamma", is_active=False)
    first = ps.tick("sync", minute + timedelta(seconds=7))
    assert (first["dispatched"], first["state"]) == (2, "running")
    again = ps.tick("sync", minute + timedelta(seconds=40))  # same minute, delivered again / late
    assert again["dispatched"] == 0
    records = ps.receive()
    assert {json.loads(r["body"])["job_id"] for r in records} == {
        f"sync-{a['id']}-20261203T0900Z",
        f"sync-{b['id']}-20261203T0900Z",
    }
    assert len(records) == 2
    assert ps.work(records) == []
    assert ps.receive() == []
    _, jobs = ps.http("GET", "/jobs", query="task_type=sync&status=succeeded", claims=VIEWER)
    assert len(jobs["jobs"]) == 2
    assert len(ps.sim.simulator.calls_for()) == 2
    call = ps.sim.simulator.calls_for("alpha")[0]
    assert call["job_id"] == f"sync-{a['id']}-20261203T0900Z" and call["task_type"] == "sync"
    nxt = ps.tick("sync", minute + timedelta(minutes=1))
    assert nxt["dispatched"] == 2


def test_interval_skips_minutes_off_the_grid(ps, minute):
    ps.platform("alpha")
    ps.http("POST", "/scheduler/config", body={"task_type": "valid", "interval_minutes": 5})
    dispatched = [ps.tick("valid", minute + timedelta(minutes=m))["dispatched"] for m in range(10)]
    assert dispatched == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_job_detail_records_every_attempt_and_retries_then_fails(ps, minute):
    platform = ps.platform("alpha")
    ps.sim.simulator.set("alpha", error_rate=1.0, error_status=503)
    ps.http(
        "POST", "/scheduler/config", body={"task_type": "sync", "retry": {"max_attempts": 3, "backoff_s": 0}}
    )
    ps.tick("sync", minute)
    job_id = f"sync-{platform['id']}-20261203T0900Z"
    for attempt in (1, 2, 3):
        records = ps.receive(visibility=0)
        assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == [str(attempt)]
        assert ps.work(records) == [records[0]["messageId"]]  # reported failed: SQS redelivers
        job = ps.job(job_id)
        assert job["attempts"] == attempt
        assert job["status"] == ("retrying" if attempt < 3 else "failed")
    assert [a["outcome"] for a in job["attempt_log"]] == ["server_error"] * 3
    assert [a["http_status"] for a in job["attempt_log"]] == [503] * 3
    assert job["attempt_log"][0]["summary"].startswith('{"ok":false')
    # the 4th receive is SQS's redrive: the message is in the DLQ, not delivered again
    assert ps.receive(visibility=0) == []
    dlq = ps.sqs.get_queue_url(QueueName="platform-sync-jobs-dlq")["QueueUrl"]
    moved = ps.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["job_id"] for m in moved] == [job_id]
    assert len(ps.sim.simulator.calls_for("alpha")) == 3


def test_outcome_mapping(ps, minute):
    ids = {}
    for key, behaviour in (
        ("slow", {"hang": True, "timeout_s": 3}),
        ("gone", {"status": 404}),
        ("fine", {"latency_ms": 5}),
    ):
        ids[key] = ps.platform(key, read_timeout_s=0.5 if key == "slow" else 5)["id"]
        ps.sim.simulator.set(key, **behaviour)
    ids["closed"] = ps.platform("closed", base_url="http://127.0.0.1:9/p/closed")["id"]  # nothing listens
    ps.http(
        "PUT",
        "/scheduler/config/sync",
        body={
            "enabled": True,
            "interval_minutes": 1,
            "max_concurrent_jobs": 50,
            "retry": {"max_attempts": 1, "backoff_s": 0},
        },
    )
    ps.tick("sync", minute)
    ps.work(ps.receive())
    outcome = {k: ps.job(f"sync-{i}-20261203T0900Z") for k, i in ids.items()}
    assert {k: (j["status"], j["last_outcome"]) for k, j in outcome.items()} == {
        "slow": ("failed", "timed_out"),
        "gone": ("failed", "failed"),
        "fine": ("succeeded", "succeeded"),
        "closed": ("failed", "unavailable"),
    }
    assert outcome["gone"]["attempt_log"][0]["http_status"] == 404
    assert outcome["slow"]["attempt_log"][0]["duration_ms"] < 2000  # read timeout 0.5 s, not the hang


def test_duplicate_delivery_of_a_succeeded_job_does_not_call_the_platform_again(ps, minute):
    ps.platform("alpha")
    ps.tick("sync", minute)
    records = ps.receive()
    ps.work(records)
    assert len(ps.sim.simulator.calls_for("alpha")) == 1
    # SQS delivers the same message again (at-least-once), and a replay sends a copy
    assert ps.work(records) == []
    ps.sqs.send_message(QueueUrl=ps.queue_url, MessageBody=records[0]["body"])
    ps.work(ps.receive())
    assert len(ps.sim.simulator.calls_for("alpha")) == 1


def test_the_worker_refuses_a_stored_url_that_the_api_would_refuse(ps, minute, db):
    platform = ps.platform("alpha")
    db.execute(
        text("UPDATE platform_sync.platforms SET base_url = 'http://169.254.169.254/latest' WHERE id = :id"),
        {"id": platform["id"]},
    )
    ps.tick("sync", minute)
    assert ps.work(ps.receive()) == []
    job = ps.job(f"sync-{platform['id']}-20261203T0900Z")
    assert (job["status"], job["last_outcome"]) == ("failed", "refused")
    assert "link-local" in job["attempt_log"][0]["error"]


def test_auth_header_comes_from_secrets_manager(ps, minute):
    import boto3

    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="opsdeck-test/platform-sync/alpha", SecretString="Bearer s3cr3t"
    )
    platform = ps.platform("alpha", auth_secret_ref="opsdeck-test/platform-sync/alpha")
    _, shown = ps.http("GET", f"/platforms/{platform['id']}", claims=VIEWER)
    assert "s3cr3t" not in json.dumps(shown)
    ps.tick("sync", minute)
    ps.work(ps.receive())
    assert ps.sim.simulator.calls_for("alpha")[0]["auth"] is True
    assert ps.job(f"sync-{platform['id']}-20261203T0900Z")["status"] == "succeeded"


def test_pause_resume_stop_start(ps, minute):
    ps.platform("alpha")
    status, paused = ps.http("POST", "/scheduler/sync/pause")
    assert status == 200 and paused["results"][0]["state"] == "paused"
    assert ps.rule_state("sync") == "DISABLED" and ps.rule_state("valid") == "ENABLED"
    assert ps.tick("sync", minute)["dispatched"] == 0
    assert ps.http("POST", "/scheduler/sync/resume")[1]["results"][0]["state"] == "running"
    assert ps.rule_state("sync") == "ENABLED"
    assert ps.tick("sync", minute + timedelta(minutes=1))["dispatched"] == 1

    ps.tick("valid", minute)
    status, stopped = ps.http("POST", "/scheduler/stop")
    assert status == 200
    assert {r["task_type"]: r["canceled_jobs"] for r in stopped["results"]} == {"sync": 1, "valid": 1}
    assert ps.rule_state("sync") == ps.rule_state("valid") == "DISABLED"
    status, problem = ps.http("POST", "/scheduler/resume")
    assert status == 409 and problem["type"].endswith("/conflict")
    assert ps.http("POST", "/scheduler/valid/pause")[0] == 409
    # the canceled jobs' messages are acknowledged without calling anyone
    assert ps.work(ps.receive()) == []
    assert ps.sim.simulator.calls_for() == []
    assert ps.http("POST", "/scheduler/start")[0] == 200
    assert ps.rule_state("sync") == "ENABLED"
    assert ps.tick("sync", minute + timedelta(minutes=2))["dispatched"] == 1


def test_a_rule_a_redeploy_re_enabled_is_disabled_again_by_its_first_tick(ps, minute):
    ps.platform("alpha")
    ps.http("POST", "/scheduler/valid/pause")
    ps.events.enable_rule(Name="opsdeck-test-platform-sync-valid-schedule")  # what CloudFormation does
    _, state = ps.http("GET", "/scheduler", claims=VIEWER)
    valid = next(t for t in state["task_types"] if t["task_type"] == "valid")
    assert (valid["state"], valid["rule_state"], valid["in_agreement"]) == ("paused", "ENABLED", False)
    tick = ps.tick("valid", minute)
    assert (tick["dispatched"], tick["skipped"], tick["rule_disabled"]) == (0, "paused", True)
    assert ps.rule_state("valid") == "DISABLED"


def test_deleting_a_platform_cancels_its_queued_jobs_and_keeps_history(ps, minute):
    platform = ps.platform("alpha")
    ps.tick("sync", minute)
    ps.work(ps.receive())
    ps.tick("sync", minute + timedelta(minutes=1))
    status, deleted = ps.http("DELETE", f"/platforms/{platform['id']}")
    assert (status, deleted["canceled_jobs"]) == (200, 1)
    assert ps.http("GET", f"/platforms/{platform['id']}", claims=VIEWER)[0] == 404
    _, jobs = ps.http("GET", "/jobs", query=f"platform_id={platform['id']}", claims=VIEWER)
    assert [j["status"] for j in jobs["jobs"]] == ["canceled", "succeeded"]
    ps.work(ps.receive())
    assert len(ps.sim.simulator.calls_for("alpha")) == 1
    assert ps.platform("alpha")["id"] != platform["id"]  # the name is free again


def test_run_now_for_all_or_one(ps):
    a, b = ps.platform("alpha"), ps.platform("beta")
    status, run = ps.http("POST", "/run/valid")
    assert status == 202 and run["queued"] == 2
    status, one = ps.http("POST", "/run/valid", query=f"platform_id={b['id']}")
    assert (
        status == 202 and len(one["job_ids"]) == 1 and one["job_ids"][0].startswith(f"valid-{b['id']}-run-")
    )
    assert ps.http("POST", "/run/valid", query="platform_id=99999")[0] == 404
    ps.drain()
    assert statuses(ps, run["job_ids"] + one["job_ids"]) == ["succeeded"] * 3
    assert len(ps.sim.simulator.calls_for("beta")) == 2 and a["id"]


def test_jobs_listing_pages_and_filters(ps, minute):
    ps.platform("alpha")
    for m in range(5):
        ps.tick("sync", minute + timedelta(minutes=m))
    _, first = ps.http("GET", "/jobs", query="limit=3", claims=VIEWER)
    _, second = ps.http("GET", "/jobs", query=f"limit=3&cursor={first['next_cursor']}", claims=VIEWER)
    ids = [j["id"] for j in first["jobs"] + second["jobs"]]
    assert len(ids) == len(set(ids)) == 5 and second["next_cursor"] is None
    assert ps.http("GET", "/jobs", query="status=nope", claims=VIEWER)[0] == 422
    assert ps.http("GET", "/jobs/not-a-job", claims=VIEWER)[0] == 422
    assert ps.http("GET", "/jobs/sync-1-20000101T0000Z", claims=VIEWER)[0] == 404


def test_max_concurrent_jobs_holds_across_workers(ps, minute, db):
    ps.platform("alpha")
    ps.platform("beta")
    ps.http("POST", "/scheduler/config", body={"task_type": "sync", "max_concurrent_jobs": 1})
    # another worker holds a running job of this task type under a live lease
    ps.tick("sync", minute)
    db.execute(
        text(
            "UPDATE platform_sync.jobs SET status = 'running', lease_until = now() + interval '1 minute' "
            "WHERE id LIKE 'sync-%-20261203T0900Z' "
            "AND platform_id = (SELECT min(id) FROM platform_sync.platforms)"
        )
    )
    assert ps.work(ps.receive()) == []  # one skipped (running elsewhere), one deferred (limit)
    assert ps.sim.simulator.calls_for() == []
    redelivered = ps.sqs.receive_message(QueueUrl=ps.queue_url, AttributeNames=["All"]).get("Messages", [])
    assert redelivered == []  # the deferred copy waits out its delay
    attrs = ps.sqs.get_queue_attributes(
        QueueUrl=ps.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


def test_a_malformed_message_fails_alone(ps, minute):
    ps.platform("alpha")
    ps.tick("sync", minute)
    ps.sqs.send_message(QueueUrl=ps.queue_url, MessageBody="{not json")
    records = ps.receive()
    bad = next(r for r in records if r["body"] == "{not json")
    assert ps.work(records) == [bad["messageId"]]
    assert len(ps.sim.simulator.calls_for("alpha")) == 1


def test_a_retry_waits_out_the_policy_backoff(ps, minute):
    platform = ps.platform("alpha")
    ps.sim.simulator.set("alpha", error_rate=1.0, error_status=502)
    ps.http(
        "POST", "/scheduler/config", body={"task_type": "sync", "retry": {"max_attempts": 3, "backoff_s": 30}}
    )
    ps.tick("sync", minute)
    records = ps.receive(visibility=0)
    assert ps.work(records) == [records[0]["messageId"]]
    assert ps.job(f"sync-{platform['id']}-20261203T0900Z")["status"] == "retrying"
    # the worker set the message's visibility to the backoff: not delivered again yet
    assert ps.receive(visibility=0) == []
    attrs = ps.sqs.get_queue_attributes(
        QueueUrl=ps.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_reconcile_repairs_a_running_task_type_whose_rule_was_disabled(ps):
    ps.events.disable_rule(Name="opsdeck-test-platform-sync-sync-schedule")  # someone, in the console
    _, state = ps.http("GET", "/scheduler", claims=VIEWER)
    sync = next(t for t in state["task_types"] if t["task_type"] == "sync")
    assert (sync["state"], sync["rule_state"], sync["in_agreement"]) == ("running", "DISABLED", False)
    assert ps.http("GET", "/scheduler", query="reconcile=true", claims=VIEWER)[0] == 403
    status, state = ps.http("GET", "/scheduler", query="reconcile=true")
    assert status == 200
    assert ps.rule_state("sync") == "ENABLED"
    assert all(t["in_agreement"] for t in state["task_types"])


def test_the_worker_reads_no_secret_outside_its_prefix(ps, minute, db):
    platform = ps.platform("alpha", auth_secret_ref="other-stack/platform-sync/alpha")  # the schema allows it
    ps.tick("sync", minute)
    ps.work(ps.receive())
    job = ps.job(f"sync-{platform['id']}-20261203T0900Z")
    assert (job["status"], job["last_outcome"]) == ("failed", "failed")
    assert "outside 'opsdeck-test/platform-sync/'" in job["attempt_log"][0]["error"]
    assert ps.sim.simulator.calls_for("alpha") == []
