"""The REST API through Mangum: cache-first reads (fresh / stale / miss / bypass), invalidation,
ETag / 304, RBAC per endpoint, constraints (ASIN pattern, body size), runs and jobs, metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from functions.product_monitor import api, cachekeys, repository

OWN = [f"B0API{i:05d}" for i in range(50)]
A, B = OWN[0], OWN[1]


@pytest.fixture
def loaded(pm):
    """50 tracked ASINs fetched once; A has B as competitor."""
    status, _, body = pm.call("POST", "/v1/tracked-asins", roles=["operator"], body={"asins": OWN})
    assert status == 201 and body["added"] == sorted(OWN)
    status, _, _ = pm.call(
        "POST", "/v1/competitor-links", roles=["operator"], body={"asin": A, "competitor_asin": B}
    )
    assert status == 201
    status, headers, run = pm.call("POST", "/v1/ingest-runs", roles=["operator"])
    assert status == 202 and headers["location"] == f"/product-monitor/v1/jobs/{run['run_id']}"
    pm.drain()
    return pm


def test_product_summary_miss_then_fresh_with_etag_and_304(loaded):
    from opsdeck import cache

    cache.client().delete(cachekeys.summary(A))  # the worker wrote it through: start cold
    status, headers, body = loaded.call("GET", f"/v1/products/{A}")
    assert status == 200 and headers["x-cache"] == "miss"
    assert body["asin"] == A and body["tracked"] is True and body["latest"]["price"]["amount"]
    assert "stale_at" not in body and headers["x-request-id"]
    status, again, body2 = loaded.call("GET", f"/v1/products/{A}")
    assert status == 200 and again["x-cache"] == "fresh" and body2 == body
    assert again["etag"] == headers["etag"] and again["etag"].startswith('W/"')

    status, h304, empty = loaded.call("GET", f"/v1/products/{A}", headers={"if-none-match": headers["etag"]})
    assert status == 304 and empty == "" and h304["etag"] == headers["etag"] and h304["x-request-id"]
    status, _, _ = loaded.call("GET", f"/v1/products/{A}", headers={"if-none-match": 'W/"other", *'})
    assert status == 304
    status, _, _ = loaded.call("GET", f"/v1/products/{A}", headers={"if-none-match": 'W/"other"'})
    assert status == 200


def test_every_response_has_an_etag_and_304_works_on_uncached_reads_too(loaded):
    status, headers, _ = loaded.call("GET", "/v1/tracked-asins", query={"limit": "5"})
    assert status == 200 and headers["etag"]
    status, _, _ = loaded.call(
        "GET", "/v1/tracked-asins", query={"limit": "5"}, headers={"if-none-match": headers["etag"]}
    )
    assert status == 304
    for method, path in (("GET", "/v1/products/B0NOTHERE1"), ("GET", "/v1/products/bad")):
        status, headers, _ = loaded.call(method, path)
        assert (
            status in (404, 422) and headers["etag"] and headers["content-type"] == "application/problem+json"
        )


def test_asin_pattern_is_declared_and_enforced(loaded):
    status, _, body = loaded.call("GET", "/v1/products/b0api00000")
    assert status == 422 and body["type"].endswith("/invalid-input")
    params = loaded_openapi_param("/product-monitor/v1/products/{asin}", "get", "asin")
    assert params["schema"]["pattern"] == "^[A-Z0-9]{10}$"
    status, _, body = loaded.call("POST", "/v1/tracked-asins", roles=["operator"], body={"asins": ["x"]})
    assert status == 422
    status, _, _ = loaded.call("GET", f"/v1/products/{A}/metrics", query={"range": "1y"})
    assert status == 422


def loaded_openapi_param(path: str, method: str, name: str) -> dict:
    spec = api.app.openapi()
    return next(p for p in spec["paths"][path][method]["parameters"] if p["name"] == name)


def test_metrics_ranges_and_unknown_asin(loaded):
    for r in ("7d", "30d", "90d"):
        status, _, body = loaded.call("GET", f"/v1/products/{A}/metrics", query={"range": r})
        assert status == 200 and body["range"] == r and len(body["points"]) == 1
    status, _, _ = loaded.call("GET", "/v1/products/B0NOTHERE1/metrics")
    assert status == 404


def test_stale_hit_is_served_with_stale_at_and_refreshed_once_under_a_burst(loaded, monkeypatch):
    from opsdeck import cache

    monkeypatch.setattr(cachekeys, "SUMMARY", cachekeys.Ttl(0.2, 300))
    cache.client().delete(cachekeys.summary(A))  # drop the written-through entry (long TTL)
    status, _, _first = loaded.call("GET", f"/v1/products/{A}")
    assert status == 200
    time.sleep(0.3)
    loads: list[int] = []
    real = api._summary

    def slow(asin):
        # the refresh lasts until the 11 others were answered, so every one of them arrives while
        # it runs (however slowly a loaded machine starts the threads); a second refresher would
        # wait here too, the others never reach 11 and it shows as a second load
        loads.append(1)
        deadline = time.monotonic() + 10
        while len(results) < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(asin)

    monkeypatch.setattr(api, "_summary", slow)
    # the entry above went stale after 0.2 s; the refresh's lock lasts as long as the fresh TTL
    # (at least 1 s), so a long one now keeps a slow burst inside one lock
    monkeypatch.setattr(cachekeys, "SUMMARY", cachekeys.Ttl(10, 300))
    results: list[tuple] = []

    def one():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # Mangum runs the app on the thread's loop
        try:
            results.append(loaded.call("GET", f"/v1/products/{A}"))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1  # one refresher, not a stampede
    stale = [r for r in results if r[1]["x-cache"] == "stale"]
    assert len(stale) == 11 and all(r[2]["stale_at"] for r in stale)
    assert [r[1]["x-cache"] for r in results].count("miss") == 1  # the refresher answers with the new value
    status, headers, body = loaded.call("GET", f"/v1/products/{A}")
    assert headers["x-cache"] == "fresh" and "stale_at" not in body


def test_writes_invalidate_reads_everywhere(loaded):
    status, headers, body = loaded.call("GET", f"/v1/products/{A}")
    assert body["tracked"] is True
    status, _, _ = loaded.call("DELETE", f"/v1/tracked-asins/{A}", roles=["operator"])
    assert status == 204
    status, headers, body = loaded.call("GET", f"/v1/products/{A}")
    assert headers["x-cache"] == "miss" and body["tracked"] is False
    # another container's write: only the shared generation counter moves
    loaded.call("GET", f"/v1/products/{B}")
    from opsdeck import cache

    cache.bump(cachekeys.gen(B))
    assert loaded.call("GET", f"/v1/products/{B}")[1]["x-cache"] == "miss"


def test_a_new_ingest_shows_at_once_and_is_written_through(loaded):
    _, _, before = loaded.call("GET", f"/v1/products/{A}")
    loaded.call("POST", "/v1/ingest-runs", roles=["operator"], body={"asins": OWN})
    loaded.drain()
    _status, headers, after = loaded.call("GET", f"/v1/products/{A}")
    assert headers["x-cache"] == "fresh"  # invalidated, then written through by the worker
    assert after["latest"]["captured_at"] > before["latest"]["captured_at"]
    from opsdeck import cache

    cache.client().delete(cachekeys.summary(A))
    assert loaded.call("GET", f"/v1/products/{A}")[2] == after  # the database says the same


def test_redis_down_answers_from_the_database(loaded, configure):
    with configure(REDIS_URL="redis://127.0.0.1:1/0"):
        status, headers, body = loaded.call("GET", f"/v1/products/{A}")
        assert status == 200 and headers["x-cache"] == "bypass" and body["asin"] == A
        status, _, body = loaded.call("GET", "/v1/health", roles=None)
        assert status == 200 and body["checks"]["cache"]["status"] == "down"
        status, _, _ = loaded.call("DELETE", f"/v1/tracked-asins/{B}", roles=["operator"])
        assert status == 204  # a write still succeeds; entries age out by their TTL


def test_a_stale_competition_says_since_when_and_is_refreshed(loaded, monkeypatch):
    from opsdeck import cache

    monkeypatch.setattr(cachekeys, "COMPARE", cachekeys.Ttl(0.2, 300))
    cache.client().delete(cachekeys.compare(A, B))
    status, headers, fresh = loaded.call("GET", f"/v1/competitions/{A}")
    assert status == 200 and headers["x-cache"] == "miss" and "stale_at" not in fresh
    time.sleep(0.3)
    # another caller is refreshing the pair (it holds the entry's reload lock): this one is
    # served the stale pair, and says since when
    cache.client().set(cachekeys.compare(A, B) + ":reloading", b"1", ex=30)
    status, headers, stale = loaded.call("GET", f"/v1/competitions/{A}")
    assert status == 200 and headers["x-cache"] == "stale"
    assert datetime.fromisoformat(stale["stale_at"]) <= datetime.now(UTC)
    assert stale["competitors"] == fresh["competitors"]
    cache.client().delete(cachekeys.compare(A, B) + ":reloading")
    monkeypatch.setattr(cachekeys, "COMPARE", cachekeys.Ttl(300, 900))
    status, headers, refreshed = loaded.call("GET", f"/v1/competitions/{A}")  # this caller reloads
    assert headers["x-cache"] == "miss" and "stale_at" not in refreshed
    status, headers, again = loaded.call("GET", f"/v1/competitions/{A}")
    assert headers["x-cache"] == "fresh" and "stale_at" not in again


def test_competitions_report_and_recommendations(loaded):
    status, _, body = loaded.call("GET", f"/v1/competitions/{A}")
    assert status == 200 and [c["competitor_asin"] for c in body["competitors"]] == [B]
    assert body["competitors"][0]["own"]["price"] is not None
    status, _, report = loaded.call("GET", f"/v1/competitions/{A}/report")
    assert status == 200 and report["report"]["competitors"] == 1 and "items" not in report
    status, _, recs = loaded.call("GET", f"/v1/recommendations/{A}")
    assert status == 200 and recs["version"] == report["version"] and isinstance(recs["items"], list)
    status, _, refreshed = loaded.call("POST", f"/v1/recommendations/{A}/refresh", roles=["operator"])
    assert status == 200 and refreshed["version"] == recs["version"]  # same content: no new version
    # a new competitor changes the report: a new version, visible at once
    C = OWN[2]
    loaded.call("POST", "/v1/competitor-links", roles=["operator"], body={"asin": A, "competitor_asin": C})
    status, _, report2 = loaded.call("GET", f"/v1/competitions/{A}/report")
    assert report2["version"] == report["version"] + 1 and report2["report"]["competitors"] == 2
    status, _, _ = loaded.call("DELETE", f"/v1/competitor-links/{A}/{C}", roles=["operator"])
    assert status == 204
    status, _, _ = loaded.call("DELETE", f"/v1/competitor-links/{A}/{C}", roles=["operator"])
    assert status == 404
    status, _, body = loaded.call(
        "POST", "/v1/competitor-links", roles=["operator"], body={"asin": A, "competitor_asin": A}
    )
    assert status == 409


def test_jobs_show_runs_and_their_errors(loaded):
    loaded.sim.malformed_rate = 0.5
    status, _, run = loaded.call("POST", "/v1/ingest-runs", roles=["operator"], body={"asins": OWN[:10]})
    loaded.drain()
    status, _, body = loaded.call("GET", f"/v1/jobs/{run['run_id']}")
    assert (
        status == 200
        and body["resource"] == "ingest_run"
        and body["kind"] == "manual"
        and body["status"] == "succeeded"
    )
    sources = [e["source"] for e in body["errors"]]
    assert body["items_failed"] == sources.count("product") > 0
    assert body["reviews_failed"] == sources.count("reviews") > 0
    job_id = body["jobs"][0]["id"]
    status, _, job = loaded.call("GET", f"/v1/jobs/{job_id}")
    assert status == 200 and job["resource"] == "ingest_job" and job["run_id"] == run["run_id"]
    assert loaded.call("GET", f"/v1/jobs/{uuid.uuid4()}")[0] == 404
    assert loaded.call("GET", "/v1/jobs/not-a-uuid")[0] == 422


def test_body_size_is_limited(loaded):
    big = {"asins": ["B000000001"] * 12000}  # > 128 KiB
    status, headers, body = loaded.call("POST", "/v1/tracked-asins", roles=["operator"], body=big)
    assert status == 413 and body["type"].endswith("/payload-too-large") and headers["x-request-id"]
    status, _, _ = loaded.call(
        "POST",
        "/v1/tracked-asins",
        roles=["operator"],
        body="{not json",
        headers={"content-type": "application/json"},
    )
    assert status == 400


READS = [
    ("GET", f"/v1/products/{A}", None),
    ("GET", f"/v1/products/{A}/metrics", None),
    ("GET", f"/v1/competitions/{A}", None),
    ("GET", f"/v1/competitions/{A}/report", None),
    ("GET", f"/v1/recommendations/{A}", None),
    ("GET", "/v1/tracked-asins", None),
    ("GET", f"/v1/competitions/{A}/report/export", None),
]
WRITES = [
    ("POST", f"/v1/recommendations/{A}/refresh", None),
    ("POST", "/v1/tracked-asins", {"asins": [OWN[3]]}),
    ("DELETE", f"/v1/tracked-asins/{OWN[4]}", None),
    ("POST", "/v1/competitor-links", {"asin": A, "competitor_asin": OWN[5]}),
    ("DELETE", f"/v1/competitor-links/{A}/{B}", None),
    ("POST", "/v1/ingest-runs", {"asins": [OWN[6]]}),
    ("GET", "/v1/metrics", None),
]


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_rbac_per_endpoint(loaded, method, path, body):
    write = (method, path, body) in WRITES
    kw = {"body": body} if body is not None else {}
    assert loaded.call(method, path, roles=None, **kw)[0] == 401
    assert loaded.call(method, path, roles=["someone-else"], **kw)[0] == 403
    status = loaded.call(method, path, roles=["viewer"], **kw)[0]
    assert (status == 403) == write
    ok = loaded.call(method, path, roles=["operator"], **kw)[0]
    assert ok in (200, 201, 202, 204)
    assert loaded.call(method, path, roles=["admin"], **kw)[0] in (200, 201, 202, 204, 404)


def test_health_needs_no_token(loaded):
    status, _, body = loaded.call("GET", "/v1/health", roles=None)
    assert status == 200 and body["status"] == "ok" and body["last_run_finished_at"]


def test_metrics_are_the_deployments_counters(loaded):
    for _ in range(3):
        loaded.call("GET", f"/v1/products/{A}")
    status, headers, text = loaded.call("GET", "/v1/metrics", roles=["admin"])
    assert status == 200 and headers["content-type"].startswith("text/plain")
    lines = text.splitlines()
    assert (
        'pm_http_requests_total{method="GET",route="/product-monitor/v1/products/{asin}",status="200"} 3'
        in lines
    )
    assert 'pm_cache_lookups_total{result="fresh"} 3' in lines  # written through by the worker
    assert 'pm_ingest_jobs_total{status="succeeded"} 1' in lines
    assert 'pm_ingest_items_total{result="ok"} 50' in lines
    assert 'pm_ingest_reviews_total{result="ok"} 500' in lines
    # 50 product items at 0.0025 + 500 review items at 0.00075
    assert any(line.startswith("pm_upstream_cost_usd_total 0.5") for line in lines)
    # counters live in Redis, not in this container: a fresh container (module state dropped) sees them
    from opsdeck import cache

    raw = cache.client().hgetall("pm:telemetry:http")
    assert raw and json.dumps({k.decode(): v.decode() for k, v in raw.items()})


def test_untracked_product_has_no_recommendations(loaded):
    repository.untrack(loaded.db, OWN[7])
    status, _, _body = loaded.call("POST", f"/v1/recommendations/{OWN[7]}/refresh", roles=["operator"])
    assert status == 404


def test_every_sample_event_gets_a_clear_answer_from_the_handler(pm):
    from tests.support import EVENTS, LambdaContext

    public = {"health.json", "docs.json", "docs-asset.json", "openapi.json"}
    for sample in sorted((EVENTS / "product-monitor-api").glob("*.json")):
        event = json.loads(sample.read_text())
        response = api.handler(event, LambdaContext("product-monitor-api", timeout_s=29))
        status = response["statusCode"]
        assert status < 500, sample.name
        assert (status == 401) == (sample.name not in public), sample.name
        assert response["headers"]["x-request-id"] and response["headers"].get("etag"), sample.name


def test_report_exports_land_in_s3_with_a_presigned_download_url(loaded):
    import boto3

    from tests.integration.product_monitor.conftest import EXPORTS_BUCKET

    s3 = boto3.client("s3", region_name="us-east-1")
    status, headers, body = loaded.call("GET", f"/v1/competitions/{A}/report/export", query={"format": "csv"})
    assert status == 200 and headers["cache-control"] == "no-store"
    assert body["key"] == f"reports/{A}/v{body['version']}.csv"
    assert "X-Amz-Signature=" in body["url"] and "response-content-disposition=attachment" in body["url"]
    assert "opsdeck-test-product-monitor-exports" in body["url"]
    obj = s3.get_object(Bucket=EXPORTS_BUCKET, Key=body["key"])
    lines = obj["Body"].read().decode().splitlines()
    assert obj["ContentType"] == "text/csv" and lines[0].startswith("role,asin,title,price")
    assert lines[1].startswith(f"own,{A},") and lines[2].startswith(f"competitor,{B},")
    status, _, body = loaded.call("GET", f"/v1/competitions/{A}/report/export", query={"format": "json"})
    data = json.loads(s3.get_object(Bucket=EXPORTS_BUCKET, Key=body["key"])["Body"].read())
    assert data["asin"] == A and data["report"]["competitors"] == 1
    assert loaded.call("GET", f"/v1/competitions/{A}/report/export", query={"format": "xlsx"})[0] == 422
    assert loaded.call("GET", "/v1/competitions/B0NOTHERE1/report/export")[0] == 404


def test_csv_cells_cannot_smuggle_formulas():
    from functions.product_monitor import exports

    rec = {
        "asin": A,
        "version": 1,
        "report": {"asin": A, "own": {}, "rows": [{"asin": B, "title": "=HYPERLINK(1)"}]},
    }
    assert "'=HYPERLINK(1)" in exports.render_csv(rec).decode()
