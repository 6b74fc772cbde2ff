"""API Gateway HTTP API (payload format 2.0) in front of the catalog's HTTP functions.

``Gateway.handle(method, path, …)`` does what API Gateway does with a request:

1. route selection over every catalog route (``localcloud.events.match_route``: exact
   beats ``{param}`` beats ``{proxy+}``, a method beats ``ANY``); no route →
   ``404 {"message":"Not Found"}``;
2. the JWT authorizer on routes that declare ``authorizer="jwt"``: the bearer token (with
   or without ``Bearer``) must verify against the platform's issuer, audience, keys and
   expiry (``opsdeck.auth.verify``, i.e. the local dev issuer) → else
   ``401 {"message":"Unauthorized"}``; a route's ``scopes`` need one of them in the token's
   ``scope``/``scp`` → else ``403 {"message":"Forbidden"}``; the verified claims reach the
   function flattened to strings in ``requestContext.authorizer.jwt.claims``;
3. the payload 2.0 event (``localcloud.events.http_event``) and a synchronous invoke;
4. the response: ``statusCode``/``headers``/``cookies``/``body``/``isBase64Encoded``; a
   result without ``statusCode`` is sent as JSON with status 200 (format 2.0 inference);
   a handler that raised or timed out, or a malformed response →
   ``502 {"message":"Internal Server Error"}``; a throttled invoke (reserved concurrency) →
   ``500``; an integration that outlives 30 s → ``503 {"message":"Service Unavailable"}``.
   Every response carries ``apigw-requestid``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from localcloud.events import apigw_request_id, http_event, match_route
from localcloud.runtime import FunctionRuntime, Invocation

INTEGRATION_TIMEOUT_S = 30
MAX_REQUEST_BYTES = 10 * 1024 * 1024


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    route: str | None = None
    invocation: Invocation | None = None
    cookies: list[str] = field(default_factory=list)


def _message(status: int, message: str, request_id: str) -> GatewayResponse:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return GatewayResponse(
        status, [("content-type", "application/json"), ("apigw-requestid", request_id)], body
    )


class Gateway:
    def __init__(
        self,
        routes: Mapping[str, tuple[Any, FunctionRuntime]],
        *,
        clock: Any,
        record: Callable[[Invocation, dict[str, Any]], None],
    ) -> None:
        self.routes = dict(routes)
        self.clock = clock
        self.record = record

    def handle(
        self,
        method: str,
        path: str,
        *,
        raw_query: str = "",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        source_ip: str = "127.0.0.1",
        protocol: str = "HTTP/1.1",
    ) -> GatewayResponse:
        request_id = apigw_request_id()
        if len(body) > MAX_REQUEST_BYTES:
            return _message(413, "Request Entity Too Large", request_id)
        matched = match_route(self.routes.keys(), method.upper(), path)
        if matched is None:
            return _message(404, "Not Found", request_id)
        route_key, params = matched
        route, runtime = self.routes[route_key]
        claims: dict[str, Any] | None = None
        scopes: list[str] | None = None
        if route.authorizer == "jwt":
            verdict = self._authorize(route, headers, request_id)
            if isinstance(verdict, GatewayResponse):
                verdict.route = route_key
                return verdict
            claims, scopes = verdict
        host = next((v for k, v in headers if k.lower() == "host"), "localhost")
        pairs = [*headers]
        names = {k.lower() for k, _ in pairs}
        if "x-amzn-trace-id" not in names:
            pairs.append(("x-amzn-trace-id", f"Root=1-{int(self.clock.time()):08x}-{uuid.uuid4().hex[:24]}"))
        if "x-forwarded-port" not in names:
            pairs.append(("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80"))
        event = http_event(
            method,
            path,
            query=raw_query,
            headers=pairs,
            body=body or None,
            route_key=route_key,
            path_parameters={k: unquote(v) for k, v in params.items()} or None,
            jwt_claims=claims,
            jwt_scopes=scopes,
            source_ip=source_ip,
            when=self.clock.now(),
            request_id=request_id,
            domain=host.split(":")[0],
        )
        event["requestContext"]["http"]["protocol"] = protocol
        invocation = runtime.invoke(event, trigger="http", throttle=True)
        response = self._response(invocation, request_id)
        response.route, response.invocation = route_key, invocation
        self.record(invocation, {"event_id": request_id, "route": route_key, "status": response.status})
        return response

    # ---------------------------------------------------------------- JWT
    def _authorize(
        self, route: Any, headers: Iterable[tuple[str, str]], request_id: str
    ) -> tuple[dict[str, Any], list[str] | None] | GatewayResponse:
        from opsdeck.auth import claim_values, verify
        from opsdeck.errors import OpsdeckError

        token = next((v for k, v in headers if k.lower() == "authorization"), "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            return _message(401, "Unauthorized", request_id)
        try:
            principal = verify(token)
        except OpsdeckError:
            return _message(401, "Unauthorized", request_id)
        claims = dict(principal.claims)
        granted = sorted(claim_values(claims.get("scope")) | claim_values(claims.get("scp")))
        if route.scopes and not set(route.scopes) & set(granted):
            return _message(403, "Forbidden", request_id)
        return claims, (granted or None)

    # ----------------------------------------------------------- response
    def _response(self, invocation: Invocation, request_id: str) -> GatewayResponse:
        if invocation.outcome == "throttled":
            return _message(500, "Internal Server Error", request_id)
        if invocation.failed:
            if invocation.duration_ms > INTEGRATION_TIMEOUT_S * 1000:
                return _message(503, "Service Unavailable", request_id)
            return _message(502, "Internal Server Error", request_id)
        try:
            return map_response(invocation.result, request_id)
        except ValueError as exc:
            invocation.outcome = "invalid-response"
            invocation.error = f"malformed Lambda proxy response: {exc}"
            return _message(502, "Internal Server Error", request_id)


def map_response(result: Any, request_id: str) -> GatewayResponse:
    """A Lambda result as API Gateway (format 2.0) returns it; ``ValueError`` if malformed."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = json.dumps(result).encode()
        return GatewayResponse(
            200, [("content-type", "application/json"), ("apigw-requestid", request_id)], body
        )
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise ValueError(f"statusCode {result['statusCode']!r} is not a number") from None
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} is out of range")
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise ValueError("headers must be an object")
    headers = [(str(k), str(v)) for k, v in raw_headers.items()]
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise ValueError("cookies must be a list")
    headers.extend(("set-cookie", str(c)) for c in cookies)
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(str(body), validate=True)
        except binascii.Error:
            raise ValueError("body is marked isBase64Encoded but is not base64") from None
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    headers.append(("apigw-requestid", request_id))
    return GatewayResponse(status, headers, data, cookies=[str(c) for c in cookies])
