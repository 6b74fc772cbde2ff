"""platform_sync in the local cloud (``local_cloud`` fixture: the real catalog, virtual clock).

The schedules fire from the local EventBridge rules (whose state the API changes through the
EventBridge API), the worker consumes ``platform-sync-jobs`` through the emulated event source
mapping (visibility timeouts, ``batchItemFailures``, redrive to the DLQ after 3 receives), and
the platforms are the simulator mounted at ``/_sim/platform_sync`` (plain http on 127.0.0.1,
allowed only because the local cloud turns local mode on for these functions).
"""

from __future__ import annotations

import json
import time

import boto3
import httpx
import jwt
import pytest
from sqlalchemy import text

SYNC_RULE, VALID_RULE = (
    "opsdeck-local-platform-sync-sync-schedule",
    "opsdeck-local-platform-sync-valid-schedule",
)
API = "/platform-sync/api/v1"


def bearer(cloud, *roles: str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "opsdeck-local",
        "aud": "opsdeck",
        "sub": "op-1",
        "iat": now,
        "exp": now + 600,
        "roles": list(roles),
    }
    return {"authorization": "Bearer " + jwt.encode(claims, cloud.env["JWT_HS256_SECRET"], algorithm="HS256")}


class Harness:
    def __init__(self, cloud) -> None:
        self.cloud = cloud
        self.sim = cloud.simulator_urls["platform_sync"]
        self.events = boto3.session.Session().client(
            "events", endpoint_url=cloud.aws_url, region_name="us-east-1"
        )
        self.op = bearer(cloud, "platform-operator")
        httpx.delete(f"{self.sim}/_control/calls", timeout=5)

    def call(self, method: str, path: str, body=None, query=None, headers=None):
        status, _, raw = self.cloud.request(
            method, API + path, body=body, query=query, headers=headers if headers is not None else self.op
        )
        return status, json.loads(raw) if raw else None

    def platform(self, key: str, **extra) -> dict:
        status, body = self.call(
            "POST",
            "/platforms",
            {
                "name": key,
                "base_url": f"{self.sim}/p/{key}",
                "read_timeout_s": 5,
                "connect_timeout_s": 1,
                **extra,
            },
        )
        assert status == 201, body
        return body

    def behaviour(self, key: str, **values) -> None:
        httpx.post(f"{self.sim}/_control/behaviour", json={"key": key, **values}, timeout=5)

    def calls(self, key: str | None = None) -> list[dict]:
        return httpx.get(f"{self.sim}/_control/calls", params={"key": key} if key else {}, timeout=5).json()[
            "calls"
        ]

    def rule(self, name: str) -> str:
        return self.events.describe_rule(Name=name)["State"]

    def ticks(self, function: str) -> list[dict]:
        return [e for e in self.cloud.journal() if e["function"] == function and e["trigger"] == "schedule"]

    def jobs(self, **query) -> list[dict]:
        status, body = self.call("GET", "/jobs", query={"limit": 200, **query})
        assert status == 200, body
        return body["jobs"]

    def minutes(self, n: int) -> None:
        for _ in range(n):
            self.cloud.advance(60)
            self.cloud.run_until_idle(max_seconds=30)


@pytest.fixture
def h(local_cloud) -> Harness:
    return Harness(local_cloud)


def test_schedules_follow_pause_resume_stop_start_and_a_redeploy(h):
    a, b = h.platform("alpha"), h.platform("beta")
    h.minutes(2)
    assert len(h.jobs(task_type="sync", status="succeeded")) == 4
    assert len(h.jobs(task_type="valid", status="succeeded")) == 4
    assert len(h.calls("alpha")) == 4

    # pause: the rule is disabled through the EventBridge API, so the next ticks cost nothing
    status, paused = h.call("POST", "/scheduler/sync/pause")
    assert status == 200 and paused["results"][0]["state"] == "paused"
    assert h.rule(SYNC_RULE) == "DISABLED" and h.rule(VALID_RULE) == "ENABLED"
    ticks_before = len(h.ticks("platform-sync-dispatch-sync"))
    h.minutes(3)
    assert len(h.ticks("platform-sync-dispatch-sync")) == ticks_before
    assert len(h.jobs(task_type="sync")) == 4
    assert len(h.jobs(task_type="valid")) == 10

    # resume: jobs again
    assert h.call("POST", "/scheduler/sync/resume")[0] == 200
    assert h.rule(SYNC_RULE) == "ENABLED"
    h.minutes(1)
    assert len(h.jobs(task_type="sync", status="succeeded")) == 6

    # a redeploy while paused: CloudFormation puts the rule back to the catalog's ENABLED
    assert h.call("POST", "/scheduler/valid/pause")[0] == 200
    h.events.put_rule(Name=VALID_RULE, ScheduleExpression="rate(1 minute)", State="ENABLED")
    valid_jobs = len(h.jobs(task_type="valid"))
    h.minutes(1)  # one tick runs, sees "paused", dispatches nothing and disables the rule again
    assert h.rule(VALID_RULE) == "DISABLED"
    assert h.ticks("platform-sync-dispatch-valid")[-1]["outcome"] == "ok"
    ticks_after = len(h.ticks("platform-sync-dispatch-valid"))
    h.minutes(3)
    assert len(h.ticks("platform-sync-dispatch-valid")) == ticks_after
    assert len(h.jobs(task_type="valid")) == valid_jobs
    _, state = h.call("GET", "/scheduler")
    assert {
        t["task_type"]: (t["state"], t["rule_state"], t["in_agreement"]) for t in state["task_types"]
    } == {
        "sync": ("running", "ENABLED", True),
        "valid": ("paused", "DISABLED", True),
    }

    # stop cancels queued jobs (run-now jobs not delivered yet), resume is refused, start restarts
    status, run = h.call("POST", "/run/sync")
    assert status == 202 and run["queued"] == 2
    calls_before = len(h.calls())
    status, stopped = h.call("POST", "/scheduler/stop")
    assert status == 200
    assert {r["task_type"]: r["canceled_jobs"] for r in stopped["results"]} == {"sync": 2, "valid": 0}
    h.cloud.run_until_idle()
    assert len(h.calls()) == calls_before
    assert {j["status"] for j in h.jobs(task_type="sync", status="canceled")} == {"canceled"}
    status, problem = h.call("POST", "/scheduler/resume")
    assert status == 409 and "start" in problem["detail"]
    h.minutes(2)
    assert len(h.calls()) == calls_before
    assert h.call("POST", "/scheduler/start")[0] == 200
    assert h.rule(SYNC_RULE) == h.rule(VALID_RULE) == "ENABLED"
    h.minutes(1)
    assert len(h.calls()) == calls_before + 4
    assert a["id"] and b["id"]


def test_a_duplicate_tick_enqueues_nothing_twice(h):
    h.platform("alpha")
    first = h.cloud.fire("platform-sync-sync-schedule")
    second = h.cloud.fire("platform-sync-sync-schedule")
    assert (first["dispatched"], second["dispatched"]) == (1, 0)
    h.cloud.run_until_idle()
    assert len(h.calls("alpha")) == 1


def test_worker_timeouts_are_retried_then_dead_lettered_and_the_job_failed(h):
    p = h.platform("slow", read_timeout_s=0.3)
    h.behaviour("slow", hang=True, timeout_s=2)
    h.call(
        "PUT",
        "/scheduler/config/sync",
        {
            "enabled": True,
            "interval_minutes": 1,
            "max_concurrent_jobs": 50,
            "retry": {"max_attempts": 3, "backoff_s": 5},
        },
    )
    h.call("POST", "/scheduler/valid/pause")
    h.call("POST", "/scheduler/sync/pause")  # only the job below, no more ticks
    status, run = h.call("POST", "/run/sync", query={"platform_id": p["id"]})
    [job_id] = run["job_ids"]
    h.cloud.run_until_idle(max_seconds=120)
    status, job = h.call("GET", f"/jobs/{job_id}")
    assert (job["status"], job["attempts"]) == ("failed", 3), job
    assert [a["outcome"] for a in job["attempt_log"]] == ["timed_out"] * 3
    assert h.cloud.depth("platform-sync-jobs-dlq") == (1, 0)
    assert h.cloud.depth("platform-sync-jobs") == (0, 0)
    [dead] = h.cloud.peek("platform-sync-jobs-dlq")
    assert json.loads(dead["Body"])["job_id"] == job_id
    starts = [e["start"] for e in h.cloud.journal() if e["function"] == "platform-sync-worker"]
    assert len(starts) >= 3  # backoff 5 s, then 10 s (visibility set by the worker)

    # fixed, replayed from the DLQ: the failed job runs once more and succeeds
    h.behaviour("slow", hang=False)
    fixed = {k: p[k] for k in ("name", "base_url", "connect_timeout_s")} | {"read_timeout_s": 5}
    assert h.call("PUT", f"/platforms/{p['id']}", fixed)[0] == 200  # generous: a loaded machine
    assert h.cloud.replay("platform-sync-jobs-dlq")["moved"] == 1
    h.cloud.run_until_idle()
    status, job = h.call("GET", f"/jobs/{job_id}")
    assert (status, job["status"], job["attempts"]) == (200, "succeeded", 4)


def test_duplicate_delivery_of_a_succeeded_job_never_calls_the_platform_again(h):
    p = h.platform("alpha")
    status, run = h.call("POST", "/run/valid", query={"platform_id": p["id"]})
    assert status == 202
    h.cloud.run_until_idle()
    assert len(h.calls("alpha")) == 1
    for _ in range(3):
        h.cloud.send("platform-sync-jobs", {"job_id": run["job_ids"][0]})
    h.cloud.run_until_idle()
    assert len(h.calls("alpha")) == 1


def test_ssrf_refused_by_the_api_and_by_the_worker(h, local_cloud):
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://[::ffff:7f00:1]@x/",
        "http://2852039166/",
    ):
        status, problem = h.call("POST", "/platforms", {"name": "evil", "base_url": url})
        assert status == 422, (url, problem)
    p = h.platform("alpha")
    from opsdeck import db

    with db.transaction() as conn:  # a URL that never went through the API
        conn.execute(
            text(
                "UPDATE platform_sync.platforms SET base_url = 'http://[::ffff:169.254.169.254]/' "
                "WHERE id = :id"
            ),
            {"id": p["id"]},
        )
    h.call("POST", "/run/sync", query={"platform_id": p["id"]})
    h.cloud.run_until_idle()
    [job] = h.jobs(platform_id=p["id"])
    assert (job["status"], job["last_outcome"]) == ("failed", "refused")
    assert h.calls() == []


def test_roles_through_the_gateway(h):
    assert h.call("GET", "/platforms", headers={})[0] == 401
    assert h.call("GET", "/platforms", headers=bearer(h.cloud, "platform-viewer"))[0] == 200
    assert h.call("POST", "/scheduler/pause", headers=bearer(h.cloud, "platform-viewer"))[0] == 403
