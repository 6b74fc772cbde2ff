"""The product monitor's HTTP edge, shared by its REST and GraphQL functions.

``Edge`` is a pure ASGI middleware, innermost (after the layer's request-id middleware, so its
413s and 304s carry ``x-request-id`` too):

- request bodies are limited to ``MAX_BODY_BYTES`` (413 ``application/problem+json``, read
  before the app sees a byte);
- every response with a body gets an ``ETag`` (the one the route set, else a hash of the body),
  and a ``GET`` whose ``If-None-Match`` matches it answers 304 without a body;
- every request is counted in the deployment-wide telemetry (``telemetry.observe_request``)
  under its route template, or under ``request.state.telemetry_route`` when the route sets one
  (GraphQL: one label per persisted ``op``), with ``request.state.cache_state`` when it read
  through the cache.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from opsdeck.errors import PROBLEM_CONTENT_TYPE, status_problem
from opsdeck.jsonutil import dumps
from opsdeck.lazy import lazy_import

from .settings import load

telemetry = lazy_import("functions.product_monitor.telemetry")


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison; ``*`` matches any current representation."""
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        c = candidate.strip()
        if c == "*" or c.removeprefix("W/") == bare:
            return True
    return False


@functools.cache
def _body_limit() -> int:
    return load().max_body_bytes


class Edge:
    """Pure ASGI, innermost: body size limit (413), ETag on every response + 304, telemetry."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        limit = _body_limit()
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            chunks, size, more = [], 0, True
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await self._too_large(scope, send, limit, started)
                return
            while more:
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await self._too_large(scope, send, limit, started)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            done = False

            async def replay() -> dict:
                nonlocal done
                if done:
                    return {"type": "http.disconnect"}
                done = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay
        start: dict | None = None
        parts: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            payload = b"".join(parts)
            headers = list(start.get("headers", ()))
            etag = next((v for k, v in headers if k == b"etag"), None)
            status = start["status"]
            if etag is None and payload:
                etag = b'W/"' + hashlib.blake2b(payload, digest_size=12).hexdigest().encode() + b'"'
                headers.append((b"etag", etag))
            inm = next((v for k, v in scope.get("headers", ()) if k == b"if-none-match"), None)
            if (
                method == "GET"
                and status == 200
                and etag
                and matches(inm and inm.decode("latin-1"), etag.decode())
            ):
                status, payload = 304, b""
                headers = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type")]
            elif status == 304:
                payload = b""
            else:
                headers = [(k, v) for k, v in headers if k != b"content-length"]
                headers.append((b"content-length", b"%d" % len(payload)))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            self._observe(scope, status, started)

        await self.app(scope, receive, capture)

    async def _too_large(self, scope: dict, send: Callable, limit: int, started: float) -> None:
        body = status_problem(413, f"request bodies are limited to {limit} bytes", instance=scope["path"])
        payload = dumps(body).encode()
        etag = b'W/"' + hashlib.blake2b(payload, digest_size=12).hexdigest().encode() + b'"'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", b"%d" % len(payload)),
                    (b"etag", etag),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        self._observe(scope, 413, started)

    @staticmethod
    def _observe(scope: dict, status: int, started: float) -> None:
        state = scope.get("state") or {}
        template = state.get("telemetry_route") or getattr(scope.get("route"), "path", None) or "unmatched"
        state = state.get("cache_state")
        telemetry.observe_request(
            template, scope["method"], status, (time.perf_counter() - started) * 1000, state
        )


NOT_MODIFIED = {"description": "Not Modified: `If-None-Match` matched the current `ETag` (no body)"}


def document(router: Any) -> None:
    """What the edge answers, in the OpenAPI document of every route of ``router``: 304 on a
    GET, 413 (problem) on a method that carries a body."""
    from fastapi.routing import APIRoute

    from opsdeck.openapi import problems

    too_large = problems(413)[413]
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        if "GET" in route.methods:
            route.responses.setdefault(304, NOT_MODIFIED)
        if route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            route.responses.setdefault(413, too_large)
