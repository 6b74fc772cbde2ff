"""The Apify API client (v2), speaking the real protocol through ``opsdeck.http``.

* sync: ``POST /v2/acts/{actorId}/run-sync-get-dataset-items`` → the dataset items (201);
  a run longer than 300 s answers **408** while it goes on → fall back to the async path
  (a new run: the 408'd one cannot be addressed, Apify does not name it);
* async: ``POST /v2/acts/{actorId}/runs`` → ``{"data": run}``; poll
  ``GET /v2/actor-runs/{runId}?waitForFinish=N`` until ``SUCCEEDED`` (``FAILED``, ``ABORTED``,
  ``TIMED-OUT`` are errors); read ``GET /v2/datasets/{datasetId}/items?offset=&limit=&clean=1``
  page by page (``X-Apify-Pagination-Total``); the run's ``usageTotalUsd`` is its cost.

``Authorization: Bearer <token>`` (never in a URL, so never in a log). Every attempt takes a
token from the shared Redis bucket (``limiter``); 429 ``rate-limit-exceeded`` and 5xx are
retried by ``opsdeck.http.RetryTransport`` with full jitter honouring ``Retry-After`` (POSTs
only on 429: a 5xx may have started a paid run). Each 429 seen is reported to ``on_throttle``
so the worker can lower the shared pace.

Outbound safety: the client talks to the configured origin only. Every request — including
those built from ids the API returned — is checked against it before it leaves (an event
hook), ids must look like Apify ids (no ``/``, no ``..``, no scheme), and redirects are not
followed. A response that names another host is never fetched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from opsdeck.errors import RateLimited, UpstreamError
from opsdeck.http import RetryPolicy, make_client, raise_for_upstream

SERVICE = "Apify"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_~.\-]{0,99}$")
TERMINAL = {"SUCCEEDED", "FAILED", "ABORTED", "TIMED-OUT"}
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: run-sync-get-dataset-items holds the connection up to 300 s
SYNC_TIMEOUT = httpx.Timeout(310.0, connect=5.0)


class OutboundRefused(UpstreamError):
    """A request to a host other than the configured Apify origin (never sent)."""


class RunStillGoing(Exception):
    """The run did not finish before the caller's deadline; resume later with ``run_id``."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class ActorResult:
    items: list[Any]
    cost_usd: Decimal | None
    run_id: str | None
    mode: str  # sync | async | sync→async
    #: the same items as Apify sent them: one JSON array (a dataset's pages joined), or None
    raw: bytes | None = None


def joined_arrays(bodies: list[bytes]) -> bytes | None:
    """JSON array bodies (already parsed as arrays) → one array, each element byte for byte;
    None when a body does not read as a bare ``[...]`` text (a BOM, say)."""
    if len(bodies) == 1:
        body = bodies[0].strip()
        return body if body[:1] == b"[" and body[-1:] == b"]" else None
    inner = []
    for body in bodies:
        body = body.strip()
        if body[:1] != b"[" or body[-1:] != b"]":
            return None
        body = body[1:-1].strip()
        if body:
            inner.append(body)
    return b"[" + b",".join(inner) + b"]"


def checked_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise OutboundRefused(f"{SERVICE} returned an unusable {what}")
    return value


class _Observe(httpx.BaseTransport):
    """Below the retries: sees every attempt's status (to report 429s)."""

    def __init__(self, inner: httpx.BaseTransport, on_throttle: Callable[[], None] | None) -> None:
        self.inner = inner
        self.on_throttle = on_throttle
        self.throttled = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code == 429:
            self.throttled += 1
            if self.on_throttle is not None:
                self.on_throttle()
        return response

    def close(self) -> None:
        self.inner.close()


class ApifyClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: Any = None,
        on_throttle: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_wait_s: int = 30,
        page_size: int = 250,
        max_attempts: int = 6,
    ) -> None:
        self.origin = httpx.URL(base_url.rstrip("/") + "/")
        self._clock = clock
        self._sleep = sleep
        self.poll_wait_s = poll_wait_s
        self.page_size = page_size
        self.observer = _Observe(transport if transport is not None else httpx.HTTPTransport(), on_throttle)
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        hooks = {"request": [self._guard]}
        self._get = make_client(
            base_url=base_url,
            timeout=TIMEOUT,
            retry=RetryPolicy(max_attempts=max_attempts, base_s=0.5, cap_s=30.0),
            limiter=limiter,
            headers=headers,
            transport=self.observer,
            event_hooks=hooks,
            sleep=sleep,
        )
        self._post = make_client(
            base_url=base_url,
            timeout=TIMEOUT,
            # 429: Apify refused before starting anything, safe to repeat; a 5xx may have started a run
            retry=RetryPolicy(
                max_attempts=max_attempts,
                base_s=0.5,
                cap_s=30.0,
                retry_statuses=frozenset({429}),
                retry_methods=frozenset({"POST"}),
            ),
            limiter=limiter,
            headers=headers,
            transport=self.observer,
            event_hooks=hooks,
            sleep=sleep,
        )

    def close(self) -> None:
        self._get.close()
        self._post.close()

    # ------------------------------------------------------------------ guard

    def _guard(self, request: httpx.Request) -> None:
        url, origin = request.url, self.origin
        same = (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port)
        if not same or not url.path.startswith(origin.path):
            raise OutboundRefused(
                f"refused a request to {url.scheme}://{url.host}: not the configured Apify host"
            )

    def _check(self, response: httpx.Response) -> None:
        if response.is_redirect:
            raise OutboundRefused(
                f"{SERVICE} answered a redirect (HTTP {response.status_code}); not followed"
            )
        raise_for_upstream(response, SERVICE)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                f"{SERVICE} answered HTTP {response.status_code} with a body that is not JSON"
            ) from None

    # ------------------------------------------------------------------- calls

    def run_sync(self, actor: str, actor_input: dict[str, Any]) -> list[Any] | None:
        """Items of a synchronous run, or None when Apify answered 408 (the run outlived 300 s)."""
        got = self._run_sync(actor, actor_input)
        return None if got is None else got[0]

    def _run_sync(self, actor: str, actor_input: dict[str, Any]) -> tuple[list[Any], bytes] | None:
        path = f"v2/acts/{quote(checked_id(actor, 'actor id'), safe='~')}/run-sync-get-dataset-items"
        response = self._post.post(
            path, params={"clean": "1", "format": "json"}, json=actor_input, timeout=SYNC_TIMEOUT
        )
        if response.status_code == 408:
            return None
        self._check(response)
        items = self._json(response)
        if not isinstance(items, list):
            raise UpstreamError(f"{SERVICE} dataset items are not a JSON array")
        return items, response.content

    def start_run(
        self, actor: str, actor_input: dict[str, Any], *, timeout_s: int | None = None
    ) -> dict[str, Any]:
        path = f"v2/acts/{quote(checked_id(actor, 'actor id'), safe='~')}/runs"
        params = {"timeout": str(timeout_s)} if timeout_s else None
        response = self._post.post(path, params=params, json=actor_input)
        self._check(response)
        return self._run(response)

    def get_run(self, run_id: str, wait_s: int = 0) -> dict[str, Any]:
        path = f"v2/actor-runs/{checked_id(run_id, 'run id')}"
        timeout = httpx.Timeout(TIMEOUT.read + wait_s, connect=5.0)
        response = self._get.get(
            path, params={"waitForFinish": str(wait_s)} if wait_s else None, timeout=timeout
        )
        self._check(response)
        return self._run(response)

    def _run(self, response: httpx.Response) -> dict[str, Any]:
        body = self._json(response)
        run = body.get("data") if isinstance(body, dict) else None
        if not isinstance(run, dict) or not isinstance(run.get("status"), str):
            raise UpstreamError(f"{SERVICE} answered a run without data.status")
        checked_id(run.get("id"), "run id")
        return run

    def wait(self, run_id: str, deadline: float | None = None) -> dict[str, Any]:
        """Poll until the run is terminal; ``RunStillGoing`` when ``deadline`` (clock) comes first."""
        while True:
            wait_s = self.poll_wait_s
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 1:
                    raise RunStillGoing(run_id)
                wait_s = max(0, min(wait_s, int(left) - 1))
            run = self.get_run(run_id, wait_s)
            if run["status"] in TERMINAL:
                return run
            if wait_s == 0:
                self._sleep(1.0)

    def dataset_items(self, dataset_id: str) -> list[Any]:
        return self._dataset(dataset_id)[0]

    def _dataset(self, dataset_id: str) -> tuple[list[Any], list[bytes]]:
        """The dataset's items and the page bodies they were read from."""
        path = f"v2/datasets/{checked_id(dataset_id, 'dataset id')}/items"
        items: list[Any] = []
        bodies: list[bytes] = []
        offset = 0
        while True:
            params = {"offset": str(offset), "limit": str(self.page_size), "clean": "1", "format": "json"}
            response = self._get.get(path, params=params)
            self._check(response)
            page = self._json(response)
            if not isinstance(page, list):
                raise UpstreamError(f"{SERVICE} dataset items are not a JSON array")
            items.extend(page)
            bodies.append(response.content)
            offset += len(page)
            total = _int_header(response, "x-apify-pagination-total")
            if (
                not page
                or (total is not None and offset >= total)
                or (total is None and len(page) < self.page_size)
            ):
                return items, bodies

    def finish(self, run: dict[str, Any], mode: str) -> ActorResult:
        if run["status"] != "SUCCEEDED":
            raise UpstreamError(f"{SERVICE} run ended {run['status']}")
        dataset = checked_id(run.get("defaultDatasetId"), "dataset id")
        items, bodies = self._dataset(dataset)
        return ActorResult(items, cost_of(run), run["id"], mode, joined_arrays(bodies))

    def run_actor(
        self,
        actor: str,
        actor_input: dict[str, Any],
        *,
        mode: str = "async",
        deadline: float | None = None,
        resume_run_id: str | None = None,
        on_started: Callable[[str], None] | None = None,
        run_timeout_s: int | None = None,
    ) -> ActorResult:
        """Run ``actor`` and collect its items (see the module docstring for the paths)."""
        if resume_run_id:
            run = self.wait(checked_id(resume_run_id, "run id"), deadline)
            if run["status"] == "SUCCEEDED":
                return self.finish(run, "async")
        if mode == "sync":
            got = self._run_sync(actor, actor_input)
            if got is not None:
                return ActorResult(got[0], None, None, "sync", joined_arrays([got[1]]))
            mode = "sync→async"
        run = self.start_run(actor, actor_input, timeout_s=run_timeout_s)
        if on_started is not None:
            on_started(run["id"])
        if run["status"] not in TERMINAL:
            run = self.wait(run["id"], deadline)
        return self.finish(run, "async" if mode == "async" else mode)


def cost_of(run: dict[str, Any]) -> Decimal | None:
    value = run.get("usageTotalUsd")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


__all__ = ["ActorResult", "ApifyClient", "OutboundRefused", "RateLimited", "RunStillGoing", "cost_of"]
