"""The Apify client against the simulator over real HTTP (and MockTransport for exact shapes).

The simulator's clock is the test's: the client's backoff sleeps advance it, so a 429 is
followed by a wait that really refills the simulator's bucket, without wall-clock waiting.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from functions.product_monitor import apify, simulator
from functions.product_monitor.domain import Malformed, normalise
from opsdeck.errors import ConfigError, RateLimited, UpstreamError

ACTOR = "junglee~amazon-crawler"
ASINS = [f"B0{i:08d}" for i in range(1, 21)]


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock):
    instance = simulator.Simulator(seed=3, clock=clock.now, sync_max_items=10)
    with simulator.serve(simulator.create_app(instance)) as served:
        instance.url = served.url  # type: ignore[attr-defined]
        yield instance


def client(sim, clock, **kw) -> apify.ApifyClient:
    kw.setdefault("sleep", clock.sleep)
    return apify.ApifyClient(sim.url, simulator.SIM_TOKEN, clock=clock.now, **kw)


def paths(sim, prefix: str) -> list[str]:
    return [p for _, _, p in sim.log if p.startswith(prefix)]


def test_sync_run_returns_the_items(sim, clock):
    result = client(sim, clock).run_actor(ACTOR, {"asins": ASINS[:5]}, mode="sync")
    assert result.mode == "sync" and result.cost_usd is None
    assert [i["asin"] for i in result.items] == ASINS[:5]
    assert paths(sim, "/v2/acts/") == [f"/v2/acts/{ACTOR}/run-sync-get-dataset-items"]


def test_the_items_come_with_their_json_as_received_pages_joined(sim, clock):
    synced = client(sim, clock).run_actor(ACTOR, {"asins": ASINS[:5]}, mode="sync")
    assert json.loads(synced.raw) == synced.items
    paged = client(sim, clock, page_size=7, poll_wait_s=0).run_actor(ACTOR, {"asins": ASINS})
    assert len(paths(sim, "/v2/datasets/")) == 3  # 7 + 7 + 6: three bodies, one array
    assert json.loads(paged.raw) == paged.items and len(paged.items) == 20


@pytest.mark.parametrize(
    ("bodies", "joined"),
    [
        ([b' [{"a": 1}]\n'], b'[{"a": 1}]'),
        ([b'[{"a":1},{"a":2}]', b"[ ]", b'[{"a":3}]'], b'[{"a":1},{"a":2},{"a":3}]'),
        ([b"[]", b"[]"], b"[]"),
        ([b"\xef\xbb\xbf[1]"], None),  # a BOM: the items are encoded again instead
        ([b"[1]", b"\xef\xbb\xbf[2]"], None),
    ],
)
def test_page_bodies_join_into_one_array(bodies, joined):
    assert apify.joined_arrays(bodies) == joined


def test_sync_408_falls_back_to_an_async_run_with_its_cost(sim, clock):
    result = client(sim, clock).run_actor(ACTOR, {"asins": ASINS}, mode="sync")
    assert sim.stats.sync_timeouts == 1 and sim.stats.async_runs == 1
    assert result.mode == "sync→async"
    assert sorted(i["asin"] for i in result.items) == ASINS
    assert result.cost_usd == Decimal("0.05")  # 20 items x 0.0025


def test_async_run_is_polled_then_its_dataset_read_page_by_page(sim, clock):
    sim.run_seconds = 45
    result = client(sim, clock, page_size=7, poll_wait_s=0).run_actor(ACTOR, {"asins": ASINS})
    assert result.mode == "async" and len(result.items) == 20
    assert len(paths(sim, "/v2/datasets/")) == 3  # 7 + 7 + 6
    assert len(paths(sim, "/v2/actor-runs/")) >= 2  # RUNNING, then SUCCEEDED
    assert result.run_id in sim.runs


def test_a_run_outliving_the_deadline_is_resumed_not_restarted(sim, clock):
    sim.run_seconds = 600
    c = client(sim, clock, poll_wait_s=0)
    started: list[str] = []
    with pytest.raises(apify.RunStillGoing) as stopped:
        c.run_actor(ACTOR, {"asins": ASINS[:3]}, deadline=clock.now() + 30, on_started=started.append)
    assert started == [stopped.value.run_id]
    clock.t += 600
    result = c.run_actor(ACTOR, {"asins": ASINS[:3]}, resume_run_id=stopped.value.run_id)
    assert sim.stats.async_runs == 1 and len(result.items) == 3


def test_429_backs_off_with_jitter_and_reports_each_throttle(sim, clock):
    sim.rate_per_s, sim.burst = 1.0, 1
    throttles: list[int] = []
    c = client(sim, clock, on_throttle=lambda: throttles.append(1))
    c.run_actor(ACTOR, {"asins": ASINS[:2]}, mode="sync")
    c.run_actor(ACTOR, {"asins": ASINS[2:4]}, mode="sync")  # the bucket is empty: 429 first
    assert sim.stats.throttled >= 1 and len(throttles) == sim.stats.throttled
    assert clock.slept and all(0 <= s <= 30 for s in clock.slept)


def test_rate_limit_past_the_retries_is_rate_limited(sim, clock):
    sim.rate_per_s, sim.burst = 0.0001, 1
    c = client(sim, clock, max_attempts=3)
    c.run_actor(ACTOR, {"asins": ASINS[:1]}, mode="sync")
    with pytest.raises(RateLimited, match="rate-limit-exceeded"):
        c.run_actor(ACTOR, {"asins": ASINS[:1]}, mode="sync")


def test_wrong_token_is_an_upstream_error_not_retried(sim, clock):
    c = apify.ApifyClient(sim.url, "not-the-token", sleep=clock.sleep)
    with pytest.raises(UpstreamError, match="token-not-valid"):
        c.run_actor(ACTOR, {"asins": ASINS[:1]})
    assert sim.stats.requests == 1


def test_a_dataset_id_that_points_elsewhere_is_refused(sim, clock):
    for hostile in ("../../../evil", "http://evil.example/items", "a/b"):
        sim.hostile_dataset_id = hostile
        with pytest.raises(apify.OutboundRefused):
            client(sim, clock).run_actor(ACTOR, {"asins": ASINS[:1]})
    assert not [p for p in paths(sim, "/v2/datasets/") if "evil" in p]


def test_requests_to_another_host_never_leave(sim, clock):
    c = client(sim, clock)
    with pytest.raises(apify.OutboundRefused, match="not the configured Apify host"):
        c._get.get("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(apify.OutboundRefused):
        c._get.get(sim.url.replace("127.0.0.1", "localhost") + "/v2/datasets/x/items")


def test_a_redirect_is_not_followed():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://evil.example/x"})

    c = apify.ApifyClient("https://api.apify.com", "t", transport=httpx.MockTransport(answer))
    with pytest.raises(apify.OutboundRefused, match="redirect"):
        c.get_run("abc")


def test_5xx_on_get_is_retried_honouring_retry_after_and_the_real_shapes_are_read():
    seen: list[str] = []
    slept: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        assert request.headers["authorization"] == "Bearer tok"
        assert "tok" not in str(request.url)
        if request.url.path.endswith("/runs"):
            assert json.loads(request.content) == {"asins": ["B000000001"]}
            run = {"id": "r1", "status": "READY", "defaultDatasetId": "d1"}
            return httpx.Response(201, json={"data": run})
        if request.url.path == "/v2/actor-runs/r1":
            if seen.count("GET /v2/actor-runs/r1") == 1:
                return httpx.Response(503, headers={"retry-after": "7"}, json={"error": {"type": "x"}})
            run = {"id": "r1", "status": "SUCCEEDED", "defaultDatasetId": "d1", "usageTotalUsd": 0.0123}
            return httpx.Response(200, json={"data": run})
        if request.url.path == "/v2/datasets/d1/items":
            return httpx.Response(
                200, json=[{"asin": "B000000001"}], headers={"x-apify-pagination-total": "1"}
            )
        return httpx.Response(404)

    c = apify.ApifyClient(
        "https://api.apify.com", "tok", transport=httpx.MockTransport(answer), sleep=slept.append
    )
    result = c.run_actor(ACTOR, {"asins": ["B000000001"]})
    assert result.cost_usd == Decimal("0.0123") and result.items == [{"asin": "B000000001"}]
    assert slept and slept[0] >= 7
    assert seen == [
        f"POST /v2/acts/{ACTOR}/runs",
        "GET /v2/actor-runs/r1",
        "GET /v2/actor-runs/r1",
        "GET /v2/datasets/d1/items",
    ]


def test_failed_run_and_non_json_are_upstream_errors():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runs"):
            return httpx.Response(201, json={"data": {"id": "r1", "status": "FAILED"}})
        return httpx.Response(200, text="<html>")

    c = apify.ApifyClient("https://api.apify.com", "t", transport=httpx.MockTransport(answer))
    with pytest.raises(UpstreamError, match="FAILED"):
        c.run_actor(ACTOR, {})
    with pytest.raises(UpstreamError, match="not JSON"):
        c.get_run("r1")


def test_malformed_items_come_through_and_fail_normalisation(sim, clock):
    sim.malformed_rate = 1.0
    items = client(sim, clock).run_actor(ACTOR, {"asins": ASINS[:8]}, mode="sync").items
    for item in items:
        with pytest.raises(Malformed):
            normalise(item, datetime.now(UTC))


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.apify.com", True),
        ("https://api.apify.com/", True),
        ("http://127.0.0.1:8080/_sim/product_monitor", True),
        ("http://localhost:1", True),
        ("http://api.apify.com", False),
        ("https://api.apify.com.evil.example", False),
        ("https://evil.example", False),
        ("https://user:pw@api.apify.com", False),
        ("http://10.0.0.1:8080", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_apify_or_a_loopback_simulator_may_be_configured(url, ok):
    from functions.product_monitor.settings import checked_base_url

    if ok:
        assert checked_base_url(url)
    else:
        with pytest.raises(ConfigError):
            checked_base_url(url)


def test_simulated_items_drift_between_fetches_in_varying_shapes(clock):
    sim = simulator.Simulator(seed=5, clock=clock.now)
    captures = [normalise(sim.item("B0DRIFT001"), datetime.now(UTC)) for _ in range(12)]
    prices = {c.metric["price"] for c in captures}
    ranks = {c.metric["bsr"] for c in captures}
    assert len(prices) > 6 and len(ranks) > 6
    shapes = {type(sim.item(a)["price"]).__name__ for a in (f"B0SHAPE{i:03d}" for i in range(20))}
    assert shapes == {"dict", "float"}
