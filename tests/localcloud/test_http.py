"""API Gateway HTTP API emulation: payload 2.0 events, response mapping, JWT authorizer, errors."""

from __future__ import annotations

import json
import os
import time

import jwt
import pytest

from tests.localcloud.handlers import calls


def token(cloud, **claims) -> str:
    now = int(time.time())
    body = {"iss": "opsdeck-local", "aud": "opsdeck", "sub": "u-1", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, cloud.env["JWT_HS256_SECRET"], algorithm="HS256")


def test_request_becomes_a_payload_v2_event(cloud):
    status, headers, body = cloud.request(
        "GET",
        "/ops/test/echo/a%20b",
        headers=[("X-Trace", "1"), ("x-trace", "2"), ("Cookie", "s=1; t=2"), ("User-Agent", "pytest")],
        query="q=1&q=2&empty=",
    )
    assert status == 200, body
    data = json.loads(body)
    assert data["item"] == "a b"
    assert data["cookies"] == {"s": "1", "t": "2"}
    assert data["route"] == "GET /ops/test/echo/{item}"
    [call] = calls("http", "ops-test-api")
    event = call["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /ops/test/echo/{item}"
    assert event["rawPath"] == "/ops/test/echo/a%20b"
    assert event["rawQueryString"] == "q=1&q=2&empty="
    assert event["queryStringParameters"] == {"q": "1,2", "empty": ""}
    assert event["pathParameters"] == {"item": "a b"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-trace"] == "1,2"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert all(k == k.lower() for k in event["headers"])
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "GET",
        "path": "/ops/test/echo/a%20b",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert ctx["timeEpoch"] == int(cloud.clock.time() * 1000)
    assert ctx["requestId"] == headers["apigw-requestid"]
    assert "authorizer" not in ctx and "body" not in event
    assert call["function"] == "ops-test-api"
    assert 0 < call["remaining_ms"] <= 5000  # the catalog timeout of this function


def test_binary_and_text_bodies(cloud):
    status, _, body = cloud.request(
        "POST", "/ops/test/echo/x", body=b"\x00\xffraw", headers={"content-type": "application/octet-stream"}
    )
    assert json.loads(body) == {"item": "x", "length": 5, "base64": True, "text": "\x00\xffraw"}
    status, _, body = cloud.request("POST", "/ops/test/echo/x", body={"a": "é"})
    assert json.loads(body)["base64"] is False
    status, headers, body = cloud.request("GET", "/ops/test/binary")
    assert status == 200
    assert body == bytes(range(256))  # base64 in the Lambda response, raw bytes on the wire
    assert headers["content-type"] == "application/octet-stream"


def test_multiple_cookies_come_back_as_separate_set_cookie_headers(cloud):
    status, headers, _ = cloud.request("GET", "/ops/test/cookies")
    assert status == 200
    assert len(headers.cookies) == 2
    assert any(c.startswith("session=abc") and "HttpOnly" in c for c in headers.cookies)
    assert any(c.startswith("theme=dark") for c in headers.cookies)


def test_unknown_route_is_api_gateway_404(cloud):
    for method, path in [("GET", "/nowhere"), ("DELETE", "/ops/test/echo/x"), ("GET", "/ops/test/echo")]:
        status, headers, body = cloud.request(method, path)
        assert (status, body) == (404, b'{"message":"Not Found"}')
        assert headers["content-type"] == "application/json"
    assert cloud.journal() == []  # no function was invoked


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_jwt_authorizer_rejects_missing_or_malformed_tokens(cloud, auth):
    headers = {"authorization": auth} if auth else {}
    status, _, body = cloud.request("GET", "/ops/test/private", headers=headers)
    assert (status, body) == (401, b'{"message":"Unauthorized"}')


@pytest.mark.parametrize(
    "claims",
    [{"exp": int(time.time()) - 3600}, {"aud": "someone-else"}, {"iss": "https://evil.example"}],
    ids=["expired", "audience", "issuer"],
)
def test_jwt_authorizer_rejects_invalid_claims(cloud, claims):
    status, _, body = cloud.request(
        "GET", "/ops/test/private", headers={"authorization": f"Bearer {token(cloud, **claims)}"}
    )
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    forged = jwt.encode(
        {"iss": "opsdeck-local", "aud": "opsdeck", "sub": "x", "exp": 2**40}, "x" * 40, algorithm="HS256"
    )
    assert cloud.request("GET", "/ops/test/private", headers={"authorization": f"Bearer {forged}"})[0] == 401


def test_jwt_authorizer_passes_flattened_claims(cloud):
    bearer = token(cloud, roles=["ADMIN_READ", "AUDITOR"], admin=True)
    status, _, body = cloud.request("GET", "/ops/test/private", headers={"authorization": f"Bearer {bearer}"})
    assert status == 200
    claims = json.loads(body)["claims"]
    assert claims["roles"] == "[ADMIN_READ AUDITOR]"
    assert claims["admin"] == "true"
    assert claims["sub"] == "u-1"
    assert isinstance(claims["exp"], str)
    # API Gateway also accepts the token without the Bearer prefix
    assert cloud.request("GET", "/ops/test/private", headers={"authorization": bearer})[0] == 200


def test_route_scopes_need_one_of_them_in_the_token(cloud):
    without = token(cloud, scope="profile")
    status, _, body = cloud.request("GET", "/ops/test/scoped", headers={"authorization": f"Bearer {without}"})
    assert (status, body) == (403, b'{"message":"Forbidden"}')
    status, _, body = cloud.request(
        "GET",
        "/ops/test/scoped",
        headers={"authorization": f"Bearer {token(cloud, scope='orders:read profile')}"},
    )
    assert status == 200
    assert json.loads(body)["scopes"] == ["orders:read", "profile"]


def test_crashing_handler_is_502_journaled_and_the_next_request_works(cloud):
    status, headers, body = cloud.request("GET", "/ops/raw/crash")
    assert (status, body) == (502, b'{"message":"Internal Server Error"}')
    assert headers["apigw-requestid"]
    [entry] = cloud.journal()
    assert entry["function"] == "ops-test-raw"
    assert entry["trigger"] == "http"
    assert entry["outcome"] == "error"
    assert entry["status"] == 502
    assert entry["error"] == "RuntimeError: handler crashed on purpose"
    assert entry["event_id"] == headers["apigw-requestid"]
    assert any("handlers.py" in line for line in entry["stack"])
    assert cloud.request("GET", "/ops/raw/plain")[0] == 200


def test_response_without_status_code_is_inferred_as_json_200(cloud):
    status, headers, body = cloud.request("GET", "/ops/raw/plain")
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    assert headers["content-type"] == "application/json"


def test_malformed_response_is_502(cloud):
    status, _, body = cloud.request("GET", "/ops/raw/malformed")
    assert (status, body) == (502, b'{"message":"Internal Server Error"}')
    assert cloud.journal()[-1]["outcome"] == "invalid-response"


def test_running_past_the_catalog_timeout_is_a_timeout(cloud):
    status, _, _ = cloud.request("GET", "/ops/raw/slow")  # sleeps 1.2 s, timeout_s=1
    assert status == 502
    entry = cloud.journal()[-1]
    assert entry["outcome"] == "timeout"
    assert entry["error"] == "Task timed out after 1.00 seconds"


def test_each_function_sees_its_own_environment(cloud):
    cloud.request("GET", "/ops/test/echo/x")
    cloud.send("ops-test-jobs", {"n": 1})
    cloud.advance(0)
    api_env = calls("http", "ops-test-api")[0]["env"]
    worker_env = calls("queue", "ops-test-worker")[0]["env"]
    assert api_env["OPSDECK_FUNCTION"] == api_env["AWS_LAMBDA_FUNCTION_NAME"] == "ops-test-api"
    assert worker_env["OPSDECK_FUNCTION"] == "ops-test-worker"
    assert api_env["TEST_FLAVOUR"] == "api" and worker_env["TEST_FLAVOUR"] == "worker"
    assert api_env["STAGE"] == worker_env["STAGE"] == "local"
    # wiring: only the function that declares sends_to gets the queue URL
    assert api_env["OPS_TEST_JOBS_QUEUE_URL"] == cloud.queue_url("ops-test-jobs")
    assert worker_env["OPS_TEST_JOBS_QUEUE_URL"] is None
    assert api_env["AWS_ENDPOINT_URL"] == cloud.aws_url
    assert os.environ.get("OPSDECK_FUNCTION") is None  # the process itself is untouched
    assert cloud.function_env("ops-test-worker")["TEST_FLAVOUR"] == "worker"


def test_a_function_sends_through_the_sqs_api_and_the_consumer_gets_it(cloud):
    status, _, body = cloud.request("POST", "/ops/test/enqueue", body={"from": "api"})
    assert (status, json.loads(body)) == (200, {"sent": 1})
    assert cloud.depth("ops-test-jobs") == (1, 0)
    cloud.advance(0)
    [[record]] = [c["event"]["Records"] for c in calls("queue", "ops-test-worker")]
    assert json.loads(record["body"]) == {"from": "api"}
    assert record["attributes"]["SenderId"] == cloud.env["AWS_ACCESS_KEY_ID"]


def test_http_functions_still_work_after_asyncio_run_in_the_same_thread(cloud):
    import asyncio

    async def elsewhere() -> int:
        return 1

    assert asyncio.run(elsewhere()) == 1  # leaves this thread without a current event loop
    assert cloud.request("GET", "/ops/test/echo/x")[0] == 200


def test_reserved_concurrency_throttles_synchronous_callers(cloud):
    import threading

    from tests.localcloud.handlers import GATE

    GATE["entered"].clear()
    GATE["release"].clear()
    first: list[int] = []
    holder = threading.Thread(target=lambda: first.append(cloud.request("GET", "/ops/gated")[0]))
    holder.start()
    try:
        assert GATE["entered"].wait(10)
        status, _, body = cloud.request("GET", "/ops/gated")  # the only slot is taken
        assert (status, body) == (500, b'{"message":"Internal Server Error"}')
    finally:
        GATE["release"].set()
        holder.join(10)
    assert first == [200]
    outcomes = [e["outcome"] for e in cloud.journal() if e["function"] == "ops-test-gated"]
    assert sorted(outcomes) == ["ok", "throttled"]


def test_the_main_threads_event_loop_survives_the_local_cloud(tmp_path, redis_url):
    """Code that calls Mangum handlers directly (other tests) keeps working after a local cloud."""
    import asyncio
    import warnings

    from localcloud import LocalCloud
    from tests.localcloud.catalog import CATALOG

    with LocalCloud(
        root=tmp_path, redis_url=redis_url, virtual_clock=True, catalog=CATALOG, http=True
    ) as cloud:
        assert cloud.request("GET", "/ops/test/echo/x")[0] == 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert not asyncio.get_event_loop().is_closed()
