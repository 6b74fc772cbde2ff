"""The local HTTP port over real sockets: the API, crashes, simulators (contract B), control API."""

from __future__ import annotations

import types
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from localcloud import LocalCloud
from tests.localcloud import handlers
from tests.localcloud.catalog import CATALOG
from tests.localcloud.conftest import START


def simulator_module() -> types.SimpleNamespace:
    """A capability simulator as contract B describes it."""

    def create_app() -> FastAPI:
        app = FastAPI()

        @app.get("/api/ping")
        async def ping(request: Request) -> dict:
            return {"pong": True, "root_path": request.scope.get("root_path")}

        return app

    def environment(base_url: str) -> dict[str, str]:
        return {"OPS_TEST_UPSTREAM": base_url + "/api", "OPS_TEST_TOKEN": "simulated"}

    return types.SimpleNamespace(create_app=create_app, environment=environment)


@pytest.fixture
def served(tmp_path, redis_url, monkeypatch) -> Iterator[LocalCloud]:
    sim = simulator_module()
    monkeypatch.setattr(
        LocalCloud,
        "_capability_module",
        staticmethod(lambda capability, name: sim if (capability, name) == ("ops", "simulator") else None),
    )
    monkeypatch.setenv(
        "OPS_TEST_TOKEN", "real-credentials"
    )  # configured by the user: wins over the simulator
    monkeypatch.setitem(
        handlers.__dict__, "ENV_KEYS", (*handlers.ENV_KEYS, "OPS_TEST_UPSTREAM", "OPS_TEST_TOKEN")
    )
    handlers.CALLS.clear()
    with LocalCloud(
        root=tmp_path / ".opsdeck",
        redis_url=redis_url,
        virtual_clock=START,
        catalog=CATALOG,
        http=True,
        deploy=False,
    ) as cloud:
        yield cloud


def test_api_over_http(served):
    with httpx.Client(base_url=served.base_url) as http:
        response = http.get("/ops/test/echo/a", params={"x": "1"}, headers={"cookie": "s=1"})
        assert response.status_code == 200
        assert response.json()["query"] == {"x": "1"} and response.json()["cookies"] == {"s": "1"}
        assert response.headers["apigw-requestid"]
        assert http.get("/ops/test/binary").content == bytes(range(256))
        assert len(http.get("/ops/test/cookies").headers.get_list("set-cookie")) == 2
        assert (http.get("/missing").status_code, http.get("/missing").json()) == (
            404,
            {"message": "Not Found"},
        )
        posted = http.post("/ops/test/echo/b", content=b"\x00\x01\x02", headers={"content-type": "image/png"})
        assert posted.json() == {"item": "b", "length": 3, "base64": True, "text": "\x00\x01\x02"}


def test_crashing_handler_is_502_and_the_server_keeps_serving(served):
    with httpx.Client(base_url=served.base_url) as http:
        crashed = http.get("/ops/raw/crash")
        assert (crashed.status_code, crashed.json()) == (502, {"message": "Internal Server Error"})
        assert http.get("/ops/raw/plain").json() == {"hello": "world"}
    entry = next(e for e in served.journal() if e["outcome"] == "error")
    assert (entry["function"], entry["status"], entry["error"]) == (
        "ops-test-raw",
        502,
        "RuntimeError: handler crashed on purpose",
    )


def test_simulators_are_mounted_and_functions_point_at_them(served):
    base = served.simulator_urls["ops"]
    assert base == f"{served.base_url}/_sim/ops"
    ping = httpx.get(base + "/api/ping").json()
    assert ping == {"pong": True, "root_path": "/_sim/ops"}
    served.request("GET", "/ops/test/echo/x")
    env = handlers.calls("http", "ops-test-api")[0]["env"]
    assert env["OPS_TEST_UPSTREAM"] == base + "/api"
    assert env["OPS_TEST_TOKEN"] == "real-credentials"


def test_control_api_describes_the_cloud(served):
    state = httpx.get(served.base_url + "/_localcloud/state").json()
    assert state["aws"] == served.aws_url
    assert state["queues"]["ops-test-jobs"] == {
        "name": "ops-test-jobs",
        "visible": 0,
        "in_flight": 0,
        "delayed": 0,
    }
    assert state["schedules"]["ops-test-tick"]["state"] == "ENABLED"
    assert state["schedules"]["ops-test-tick"]["next"] == "2026-01-05T00:05:00.000Z"
    assert state["functions"]["ops-test-worker"] == "queue"


def test_real_clock_delivers_on_its_own(tmp_path, redis_url):
    """``opsdeck local up`` mode: a send wakes the poller at once, no advance() needed."""
    import time

    handlers.CALLS.clear()
    with LocalCloud(root=tmp_path, redis_url=redis_url, catalog=CATALOG, deploy=False) as cloud:
        cloud.send("ops-test-jobs", {"n": 1})
        assert cloud.run_until_idle(max_seconds=10)["idle"]
        [call] = handlers.calls("queue", "ops-test-worker")
        assert call["event"]["Records"][0]["body"] == '{"n":1}'
        sent = int(call["event"]["Records"][0]["attributes"]["SentTimestamp"])
        assert abs(sent / 1000 - time.time()) < 10
