"""GraphQL through its own handler: persisted queries only, op/vh, depth and cost limits, the
same cache as REST, RBAC, the playground only in local mode, metrics per op."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys

import pytest

from functions.product_monitor import cachekeys, graphql_api
from localcloud.events import http_event
from tests.support import ROOT, LambdaContext, env

OWN = [f"B0GQL{i:05d}" for i in range(50)]
A, B = OWN[0], OWN[1]
SUMMARY = graphql_api.op_of(graphql_api.QUERIES["ProductSummary"])
WITH_COMPETITORS = graphql_api.op_of(graphql_api.QUERIES["ProductWithCompetitors"])
REVIEWS = graphql_api.op_of(graphql_api.QUERIES["ProductReviews"])


@pytest.fixture
def loaded(pm):
    pm.call("POST", "/v1/tracked-asins", roles=["operator"], body={"asins": OWN})
    pm.call("POST", "/v1/competitor-links", roles=["operator"], body={"asin": A, "competitor_asin": B})
    pm.call("POST", "/v1/ingest-runs", roles=["operator"])
    pm.drain()
    return pm


def gql(method: str, *, roles=("viewer",), body=None, query=None):
    from opsdeck.auth import issue_dev_token

    headers = {}
    if roles is not None:
        headers["authorization"] = "Bearer " + issue_dev_token("tester", roles=list(roles))
    event = http_event(method, "/product-monitor/graphql", headers=headers, body=body, query=query or "")
    response = graphql_api.handler(event, LambdaContext("product-monitor-graphql", timeout_s=29))
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    ctype = response["headers"].get("content-type", "")
    return response["statusCode"], (json.loads(text) if "json" in ctype and text else text)


def test_persisted_query_reads_through_the_rest_cache(loaded):
    from opsdeck import cache

    cache.client().delete(cachekeys.summary(A))
    status, body = gql("POST", body={"op": SUMMARY, "variables": {"asin": A}})
    assert status == 200 and "errors" not in body
    product = body["data"]["product"]
    assert product["asin"] == A and product["tracked"] is True and product["latest"]["price"]
    assert cache.client().exists(cachekeys.summary(A))  # stored where REST reads it
    _, _, rest = loaded.call("GET", f"/v1/products/{A}")
    assert rest["latest"]["price"]["amount"] == product["latest"]["price"]


def test_nested_persisted_query_with_competitors_and_recommendation(loaded):
    status, body = gql("POST", body={"op": WITH_COMPETITORS, "variables": {"asin": A, "range": "7d"}})
    assert status == 200, body
    product = body["data"]["product"]
    assert [c["asin"] for c in product["competitors"]] == [B]
    assert len(product["metrics"]) == 1 and product["recommendation"]["version"] >= 1


@pytest.mark.parametrize("cached", [False, True], ids=["cache-miss", "cache-hit"])
def test_the_review_summary_is_the_one_rest_serves(loaded, cached):
    from opsdeck import cache

    if not cached:
        cache.client().delete(cachekeys.summary(A))
    else:
        loaded.call("GET", f"/v1/products/{A}")  # REST stores the summary first
    status, body = gql("POST", body={"op": REVIEWS, "variables": {"asin": A}})
    assert status == 200 and "errors" not in body, body
    reviews = body["data"]["product"]["reviews"]
    _, _, rest = loaded.call("GET", f"/v1/products/{A}")
    expected = rest["reviews"]
    assert expected and expected["reviews_read"] == reviews["reviewsRead"] > 0
    assert reviews["histogram"] == expected["histogram"]
    assert reviews["averageRating"] == expected["average_rating"]
    assert reviews["date"] == expected["date"]
    assert reviews["latestReviewDate"] == expected["latest_review_date"]
    assert reviews["verifiedShare"] == expected["verified_share"]
    for side in ("negative", "positive"):
        assert [s["rating"] for s in reviews[side]] == [s["rating"] for s in expected[side]]
        assert [s["title"] for s in reviews[side]] == [s["title"] for s in expected[side]]
        assert [s["date"] for s in reviews[side]] == [s["date"] for s in expected[side]]


def test_a_product_without_reviews_yet_has_none(loaded):
    from sqlalchemy import text

    from opsdeck import cache

    loaded.db.execute(text("DELETE FROM product_monitor.review_summaries WHERE asin = :a"), {"a": B})

    cache.client().delete(cachekeys.summary(B))
    status, body = gql("POST", body={"op": REVIEWS, "variables": {"asin": B}})
    assert status == 200 and "errors" not in body, body
    assert body["data"]["product"]["asin"] == B and body["data"]["product"]["reviews"] is None


def test_the_query_text_is_accepted_only_when_it_is_persisted(loaded):
    query = graphql_api.QUERIES["ProductSummary"]
    assert gql("POST", body={"op": SUMMARY, "query": query, "variables": {"asin": A}})[0] == 200
    assert gql("POST", body={"query": query, "variables": {"asin": A}})[0] == 422  # op is required
    unknown = '{ product(asin: "B0GQL00000") { asin } }'
    status, body = gql("POST", body={"op": graphql_api.op_of(unknown), "query": unknown})
    assert status == 404 and body["type"].endswith("/persisted-query-not-found")
    status, body = gql("POST", body={"op": "0" * 64})
    assert status == 404 and body["type"].endswith("/persisted-query-not-found")
    assert gql("POST", body={"op": SUMMARY, "query": "{ x }"})[0] == 409
    assert gql("POST", body={"op": "not-a-hash"})[0] == 422


def test_get_with_op_and_variables_hash(loaded):
    variables = json.dumps({"asin": A})
    vh = hashlib.sha256(variables.encode()).hexdigest()
    status, body = gql("GET", query={"op": SUMMARY, "vh": vh, "variables": variables})
    assert status == 200 and body["data"]["product"]["asin"] == A
    assert gql("GET", query={"op": SUMMARY, "vh": "a" * 64, "variables": variables})[0] == 409
    assert gql("GET", query={"op": SUMMARY, "variables": variables})[0] == 409
    assert gql("GET", query={"op": SUMMARY, "vh": vh})[0] == 409  # a vh for variables not sent
    empty = hashlib.sha256(b"").hexdigest()
    status, body = gql("GET", query={"op": SUMMARY, "vh": empty})  # no variables, and a vh saying so
    assert status == 200 and body["errors"] and body["data"] is None  # $asin is required


def test_depth_and_cost_limits_are_enforced(loaded, monkeypatch):
    deep = (
        'query Deep { product(asin: "B0GQL00000") { competitors { competitors { competitors { '
        "competitors { competitors { asin } } } } } } }"
    )
    costly = (
        'query Costly { product(asin: "B0GQL00000") { competitors { competitors { '
        "metrics { date price rating bsr } } } } }"
    )
    registry = dict(graphql_api.PERSISTED)
    registry.update({graphql_api.op_of(deep): deep, graphql_api.op_of(costly): costly})
    monkeypatch.setattr(graphql_api, "PERSISTED", registry)
    status, body = gql("POST", body={"op": graphql_api.op_of(deep)})
    assert status == 400 and body["type"].endswith("/query-too-complex") and body["depth"] == 7
    status, body = gql("POST", body={"op": graphql_api.op_of(costly)})
    assert status == 400 and body["cost"] > graphql_api.MAX_COST and "depth" not in body
    for q in graphql_api.QUERIES.values():  # what is persisted stays within the limits
        depth, cost = graphql_api.depth_and_cost(graphql_api.graphql.parse(q))
        assert depth <= graphql_api.MAX_DEPTH and cost <= graphql_api.MAX_COST


def test_roles_and_bad_arguments(loaded):
    assert gql("POST", roles=None, body={"op": SUMMARY, "variables": {"asin": A}})[0] == 401
    assert gql("POST", roles=["nobody"], body={"op": SUMMARY, "variables": {"asin": A}})[0] == 403
    status, body = gql("POST", body={"op": SUMMARY, "variables": {"asin": "nope"}})
    assert (
        status == 200 and body["data"]["product"] is None and "^[A-Z0-9]{10}$" in body["errors"][0]["message"]
    )
    status, body = gql("POST", body={"op": SUMMARY, "variables": {"asin": "B0NOTHERE1"}})
    assert status == 200 and body["data"]["product"] is None and "errors" not in body


def test_playground_only_in_local_mode(loaded):
    def page():
        event = http_event("GET", "/product-monitor/graphql/playground")
        return graphql_api.handler(event, LambdaContext("product-monitor-graphql"))["statusCode"]

    assert page() == 404  # STAGE=test
    with env(STAGE="local"):
        assert page() == 200


def test_requests_are_counted_per_op(loaded):
    gql("POST", body={"op": SUMMARY, "variables": {"asin": A}})
    gql("POST", body={"op": SUMMARY, "variables": {"asin": B}})
    _, _, text = loaded.call("GET", "/v1/metrics", roles=["operator"])
    assert f'route="graphql:{SUMMARY[:12]}",status="200"}} 2' in text


def test_the_rest_handler_does_not_import_graphql():
    probe = "import sys; import functions.product_monitor.api; print('graphql' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers/common/python'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def _raw(method: str, *, body=None, query="", headers=None, roles=("viewer",)):
    from opsdeck.auth import issue_dev_token

    headers = dict(headers or {})
    if roles is not None:
        headers["authorization"] = "Bearer " + issue_dev_token("tester", roles=list(roles))
    event = http_event(method, "/product-monitor/graphql", headers=headers, body=body, query=query)
    return graphql_api.handler(event, LambdaContext("product-monitor-graphql", timeout_s=29))


def test_a_persisted_get_has_an_etag_and_answers_304_when_it_matches(loaded):
    variables = json.dumps({"asin": A})
    query = {"op": SUMMARY, "vh": hashlib.sha256(variables.encode()).hexdigest(), "variables": variables}
    first = _raw("GET", query=query)
    etag = first["headers"]["etag"]
    assert first["statusCode"] == 200 and etag and first["headers"]["cache-control"] == "private, no-cache"
    again = _raw("GET", query=query, headers={"if-none-match": etag})
    assert again["statusCode"] == 304 and not again.get("body") and again["headers"]["x-request-id"]
    other = _raw("GET", query={**query, "op": WITH_COMPETITORS}, headers={"if-none-match": etag})
    assert other["statusCode"] == 200 and other["headers"]["etag"] != etag  # another answer
    post = _raw("POST", body={"op": SUMMARY, "variables": {"asin": A}})
    assert post["statusCode"] == 200 and post["headers"]["etag"]


def test_a_graphql_body_over_the_limit_is_413_before_it_is_read(loaded):
    response = _raw("POST", body={"op": SUMMARY, "variables": {"asin": A, "pad": "x" * 200_000}})
    assert response["statusCode"] == 413 and response["headers"]["content-type"] == "application/problem+json"


def test_unknown_hashes_are_counted_under_one_label(loaded):
    made_up = [hashlib.sha256(f"not persisted {i}".encode()).hexdigest() for i in range(5)]
    for op in made_up:
        assert gql("POST", body={"op": op})[0] == 404
    gql("POST", body={"op": SUMMARY, "variables": {"asin": A}})
    _, _, text = loaded.call("GET", "/v1/metrics", roles=["operator"])
    assert 'route="graphql:unknown",status="404"} 5' in text
    assert f'route="graphql:{SUMMARY[:12]}",status="200"}} 1' in text
    assert not any(op[:12] in text for op in made_up)


def test_introspection_fields_count_towards_depth_and_cost(loaded, monkeypatch):
    deep = "query Meta { __schema { types { fields { type { ofType { ofType { name } } } } } } }"
    wide = "query Wide { __schema { types { fields { args { type { name } } } } } }"
    assert graphql_api.depth_and_cost(graphql_api.graphql.parse(deep)) == (7, 412)
    assert graphql_api.depth_and_cost(graphql_api.graphql.parse(wide)) == (6, 2112)  # 3 lists deep
    registry = {**graphql_api.PERSISTED, graphql_api.op_of(deep): deep, graphql_api.op_of(wide): wide}
    monkeypatch.setattr(graphql_api, "PERSISTED", registry)
    monkeypatch.setattr(graphql_api, "_documents", {})
    status, body = gql("POST", body={"op": graphql_api.op_of(deep)})
    assert status == 400 and body["depth"] == 7
    status, body = gql("POST", body={"op": graphql_api.op_of(wide)})
    assert status == 400 and body["cost"] > graphql_api.MAX_COST
