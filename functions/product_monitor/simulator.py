"""Simulated Apify API for product_monitor (contract B): actors, runs, datasets.

Mounted by the local cloud at ``/_sim/product_monitor`` (``environment(base_url)`` points the
functions here, ``secret_values(base_url)`` fills the ``product-monitor-apify`` secret), run
in-process by tests and the bench (``serve(app)``), or alone with
``opsdeck product-monitor simulator``. Real HTTP, so the real client is exercised.
Development tooling: never imported by handlers, not bundled into Lambda.

* ``POST /v2/acts/{actorId}/run-sync-get-dataset-items`` — input ``{"asins": [...]}`` (or
  ``productUrls``/``categoryOrProductUrls`` with ``/dp/<ASIN>`` URLs); 201 with the items, or
  **408** ``run-timeout-exceeded`` when the batch is larger than ``sync_max_items`` (a run
  that would outlive Apify's 300 s);
* ``POST /v2/acts/{actorId}/runs`` → 201 ``{"data": run}``; ``GET /v2/actor-runs/{runId}``
  (``waitForFinish``); the run is ``RUNNING`` for ``run_seconds`` then ``SUCCEEDED``, with
  ``defaultDatasetId`` and ``usageTotalUsd`` (``cost_per_item`` per item);
* ``GET /v2/datasets/{datasetId}/items?offset=&limit=`` with ``X-Apify-Pagination-*`` headers.

Every request needs ``Authorization: Bearer <SIM_TOKEN>`` (401 ``token-not-valid`` otherwise)
and takes a token from one bucket (``rate_per_s``, ``burst``): beyond it **429**
``rate-limit-exceeded``. ``error_rate`` of the requests answer a 5xx, ``malformed_rate`` of the
items are malformed (no asin, a price that is text, stars above 5, not an object). Items drift:
every fetch of an ASIN moves its price, rating, reviews and rank a little (seeded random walk),
in the varying shapes real actors produce (``price`` as ``{value, currency}`` or a number,
``breadCrumbs`` as a string or a list, ``inStock`` or ``availability``).
``hostile_dataset_id`` makes runs name a dataset id that points elsewhere (the client must refuse).

An actor whose id contains ``review`` (the default ``junglee~amazon-reviews-scraper``) is the
reviews actor: input ``productUrls``/``asins`` and ``maxReviews`` (default 10); one item per
review, the ASIN's most recent ones. Review ``n`` of an ASIN is stable across fetches (its id,
rating, text); new reviews arrive as the product's review count drifts up, and their ratings
follow a slow drift of the product's quality, so the summaries move from day to day. The
shapes vary as between real reviews actors (``ratingScore`` or ``rating`` as a number or
``"4.0 out of 5 stars"``, ``reviewTitle``/``title``, ``reviewDescription``/``text``, ISO dates or
``"Reviewed in the United States on March 3, 2024"``, ``isVerified``/``verified``, ``asin`` or
``productAsin``); ``malformed_rate`` of them are malformed too (no ASIN, a rating of 0 or 6 or
text, not an object). Cost: ``cost_per_review`` per review item.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localcloud.server import Served  # one server helper for every simulator
from localcloud.server import serve_simulator as serve

SIM_TOKEN = "apify_api_opsdeckSimulatorToken0000000000"  # noqa: S105 - a fake, accepted by the simulator only
_DP = re.compile(r"/dp/([A-Z0-9]{10})")
CATEGORIES = ["Electronics", "Home & Kitchen", "Sports & Outdoors", "Toys & Games", "Beauty"]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


@dataclass
class ProductState:
    asin: str
    price: float
    rating: float
    reviews: int
    rank: int
    category: str
    in_stock: bool = True
    fetches: int = 0


@dataclass
class SimRun:
    id: str
    act_id: str
    dataset_id: str
    started: float
    finishes: float
    items: int
    cost: float


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0
    errors: int = 0
    sync_runs: int = 0
    sync_timeouts: int = 0
    async_runs: int = 0
    items_served: int = 0
    malformed_served: int = 0
    reviews_served: int = 0
    asins_fetched: dict[str, int] = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        *,
        seed: int = 2,
        rate_per_s: float = 50.0,
        burst: int = 20,
        error_rate: float = 0.0,
        malformed_rate: float = 0.0,
        sync_max_items: int = 100,
        run_seconds: float = 0.0,
        cost_per_item: float = 0.0025,
        cost_per_review: float = 0.00075,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.error_rate = error_rate
        self.malformed_rate = malformed_rate
        self.sync_max_items = sync_max_items
        self.run_seconds = run_seconds
        self.cost_per_item = cost_per_item
        self.cost_per_review = cost_per_review
        self.hostile_dataset_id: str | None = None
        #: actor ids whose runs answer 503 (one actor down while the others work)
        self.failing_actors: set[str] = set()
        self.clock = clock
        self.products: dict[str, ProductState] = {}
        self.runs: dict[str, SimRun] = {}
        self.datasets: dict[str, list[Any]] = {}
        self.stats = Stats()
        self._rng = random.Random(seed)  # noqa: S311 - simulation
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._refilled = clock()
        #: request log: (time, method, path)
        self.log: list[tuple[float, str, str]] = []

    # ---------------------------------------------------------------- limits

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate_per_s)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def fault(self) -> bool:
        with self._lock:
            return self.error_rate > 0 and self._rng.random() < self.error_rate

    # ----------------------------------------------------------------- items

    def _state(self, asin: str) -> ProductState:
        state = self.products.get(asin)
        if state is None:
            h = int.from_bytes(hashlib.sha256(f"{self.seed}:{asin}".encode()).digest()[:8], "big")
            r = random.Random(h)  # noqa: S311
            state = ProductState(
                asin=asin,
                price=round(r.uniform(8, 250), 2),
                rating=round(r.uniform(3.2, 4.9), 1),
                reviews=r.randint(5, 20_000),
                rank=r.randint(50, 200_000),
                category=CATEGORIES[h % len(CATEGORIES)],
            )
            self.products[asin] = state
        return state

    def item(self, asin: str) -> Any:
        """The next capture of ``asin`` (drifted), in one of the shapes actors produce."""
        with self._lock:
            s = self._state(asin)
            r = random.Random(f"{self.seed}:{asin}:{s.fetches}")  # noqa: S311
            if s.fetches:
                s.price = max(1.0, round(s.price * math.exp(r.gauss(0, 0.04)), 2))
                s.rating = min(5.0, max(1.0, round(s.rating + r.gauss(0, 0.05), 1)))
                s.reviews += r.randint(0, 25)
                s.rank = max(1, int(s.rank * math.exp(r.gauss(0, 0.2))))
                s.in_stock = r.random() > 0.03
            s.fetches += 1
            self.stats.asins_fetched[asin] = self.stats.asins_fetched.get(asin, 0) + 1
            malformed = self.malformed_rate > 0 and self._rng.random() < self.malformed_rate
            shape = r.randrange(2)
        if malformed:
            self.stats.malformed_served += 1
            return _malformed(asin, r)
        crumbs = ["Home", s.category, f"{s.category} Accessories"]
        item: dict[str, Any] = {
            "asin": asin,
            "title": f"Simulated product {asin}",
            "brand": f"Brand{asin[-2:]}",
            "url": f"https://www.amazon.com/dp/{asin}",
            "price": {"value": s.price, "currency": "$"} if shape == 0 else s.price,
            "listPrice": {"value": round(s.price * 1.2, 2), "currency": "$"},
            "stars": s.rating,
            "reviewsCount": s.reviews,
            "breadCrumbs": " \u203a ".join(crumbs) if shape == 0 else crumbs,
            "bestsellerRanks": [
                {"rank": s.rank, "category": s.category},
                {"rank": s.rank * 7 + 3, "category": "Everything"},
            ],
            "thumbnailImage": f"https://m.media-amazon.com/images/I/{asin}.jpg",
        }
        if shape == 0:
            item["inStock"] = s.in_stock
        else:
            item["availability"] = "In Stock" if s.in_stock else "Currently unavailable."
        return item

    def items_for(self, asins: list[str]) -> list[Any]:
        out = [self.item(a) for a in asins]
        self.stats.items_served += len(out)
        return out

    def reviews(self, asin: str, limit: int = 10) -> list[Any]:
        """The ``limit`` most recent reviews of ``asin`` (as many as it has), newest first."""
        with self._lock:
            s = self._state(asin)
            total = s.reviews
            base = s.rating
            malformed = [
                self.malformed_rate > 0 and self._rng.random() < self.malformed_rate
                for _ in range(min(limit, total))
            ]
            today = datetime.fromtimestamp(self.clock(), UTC).date()
        out = []
        for k, n in enumerate(range(total - 1, total - 1 - len(malformed), -1)):
            r = random.Random(f"{self.seed}:{asin}:review:{n}")  # noqa: S311 - stable per review
            if malformed[k]:
                self.stats.malformed_served += 1
                out.append(_malformed_review(asin, r))
                continue
            out.append(_review(asin, n, total, base, today, r))
        self.stats.reviews_served += len(out)
        return out

    def reviews_for(self, asins: list[str], limit: int) -> list[Any]:
        return [item for a in asins for item in self.reviews(a, limit)]

    def serve(self, act_id: str, body: Any) -> list[Any]:
        """What an actor run produces: product items, or review items for a reviews actor."""
        asins = _asins(body)
        if "review" in act_id.lower():
            limit = body.get("maxReviews", 10) if isinstance(body, dict) else 10
            limit = limit if isinstance(limit, int) and 1 <= limit <= 1000 else 10
            return self.reviews_for(asins, limit)
        return self.items_for(asins)

    def cost(self, act_id: str, items: list[Any]) -> float:
        per = self.cost_per_review if "review" in act_id.lower() else self.cost_per_item
        return len(items) * per

    # ------------------------------------------------------------------ runs

    def start_run(self, act_id: str, body: Any) -> SimRun:
        now = self.clock()
        run_id = uuid.uuid4().hex[:17]
        dataset_id = uuid.uuid4().hex[:17]
        items = self.serve(act_id, body)
        run = SimRun(
            run_id,
            act_id,
            dataset_id,
            now,
            now + self.run_seconds,
            len(items),
            self.cost(act_id, items),
        )
        self.datasets[dataset_id] = items
        self.runs[run_id] = run
        self.stats.async_runs += 1
        return run

    def run_view(self, run: SimRun) -> dict[str, Any]:
        now = self.clock()
        done = now >= run.finishes
        return {
            "id": run.id,
            "actId": run.act_id,
            "status": "SUCCEEDED" if done else "RUNNING",
            "startedAt": iso(run.started),
            "finishedAt": iso(run.finishes) if done else None,
            "defaultDatasetId": self.hostile_dataset_id or run.dataset_id,
            "defaultKeyValueStoreId": run.id + "kv",
            "usageTotalUsd": round(run.cost, 6) if done else round(run.cost / 2, 6),
            "stats": {"resurrectCount": 0},
        }


def _malformed(asin: str, r: random.Random) -> Any:
    kind = r.randrange(4)
    if kind == 0:
        return {"title": "no asin here", "price": 9.99}
    if kind == 1:
        return {"asin": asin, "price": "see options", "stars": 4.1}
    if kind == 2:
        return {"asin": asin, "price": 12.5, "stars": 7.5}
    return "<html>captcha</html>"


_NEGATIVE = [
    ("Stopped working after two weeks", "It worked fine at first, then it stopped charging entirely."),
    ("Cheap materials", "The plastic feels flimsy and one clip broke on the first day."),
    ("Not as described", "The size and the colour are not what the listing shows."),
    ("Arrived damaged", "The box was crushed and the unit was scratched."),
]
_MIXED = [("It's okay", "Does the job, but the instructions could be clearer.")]
_POSITIVE = [
    ("Works great", "Set up in minutes and it has worked perfectly every day since."),
    ("Excellent value", "Better than the brand-name one I had before, for half the price."),
    ("Exactly what I needed", "Solid build, fast delivery, would buy again."),
]
_VARIANTS = ["Color: Black", "Color: White", "Size: Large", None]
_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _review(asin: str, n: int, total: int, base: float, today: Any, r: random.Random) -> dict[str, Any]:
    """Review ``n`` (0 = the oldest) of ``asin``: its rating drifts slowly with ``n`` around ``base``."""
    quality = base + 0.9 * math.sin(n / 40 + len(asin)) - 0.3
    rating = max(1, min(5, round(r.gauss(quality, 1.1))))
    title, body = r.choice(_NEGATIVE if rating <= 2 else _MIXED if rating == 3 else _POSITIVE)
    day = today.fromordinal(today.toordinal() - (total - 1 - n) // 2)
    verified = r.random() < 0.85
    shape = n % 3
    if shape == 0:  # junglee~amazon-reviews-scraper style
        return {
            "asin": asin,
            "reviewId": f"R{asin}{n:06d}",
            "ratingScore": rating,
            "reviewTitle": title,
            "reviewDescription": body,
            "date": day.isoformat(),
            "isVerified": verified,
            "variant": r.choice(_VARIANTS),
            "reviewUrl": f"https://www.amazon.com/gp/customer-reviews/R{asin}{n:06d}",
            "position": total - n,
        }
    if shape == 1:  # text fields as shown on the page
        return {
            "productAsin": asin,
            "id": f"R{asin}{n:06d}",
            "rating": f"{rating}.0 out of 5 stars",
            "title": title,
            "text": body,
            "date": f"Reviewed in the United States on {_MONTH_NAMES[day.month - 1]} {day.day}, {day.year}",
            "verified": "Verified Purchase" if verified else "",
            "variant": r.choice(_VARIANTS),
        }
    return {
        "asin": asin,
        "reviewId": f"R{asin}{n:06d}",
        "rating": float(rating),
        "reviewTitle": title,
        "reviewDescription": body,
        "date": f"{day.isoformat()}T{r.randrange(24):02d}:{r.randrange(60):02d}:00.000Z",
        "verified": verified,
        "reviewerName": f"Customer {n}",
        "helpfulVotes": r.randrange(40),
    }


def _malformed_review(asin: str, r: random.Random) -> Any:
    kind = r.randrange(4)
    if kind == 0:
        return {"reviewTitle": "no asin here", "ratingScore": 5}
    if kind == 1:
        return {"asin": asin, "ratingScore": r.choice([0, 6]), "reviewTitle": "out of range"}
    if kind == 2:
        return {"asin": asin, "rating": "n/a", "reviewTitle": "no rating"}
    return ["not", "an", "object"]


def _asins(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    out = [a for a in body.get("asins") or [] if isinstance(a, str)]
    if out:
        return list(dict.fromkeys(out))
    for key in ("productUrls", "categoryOrProductUrls", "startUrls"):
        for entry in body.get(key) or []:
            url = entry.get("url") if isinstance(entry, dict) else entry
            if isinstance(url, str) and (m := _DP.search(url)):
                out.append(m.group(1))
    return list(dict.fromkeys(out))


def create_app(simulator: Simulator | None = None) -> Starlette:
    sim = simulator if simulator is not None else Simulator()

    def gate(request: Request) -> Response | None:
        sim.stats.requests += 1
        sim.log.append((sim.clock(), request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {SIM_TOKEN}":
            return error(401, "token-not-valid", "Authentication token is not valid.")
        if not sim.take():
            sim.stats.throttled += 1
            return error(
                429, "rate-limit-exceeded", "You have exceeded the rate limit. Please try again later."
            )
        if sim.fault():
            sim.stats.errors += 1
            return error(503, "server-error", "The server is temporarily unavailable.")
        return None

    async def run_sync(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid-input", "Input is not valid JSON.")
        if request.path_params["actor"] in sim.failing_actors:
            sim.stats.errors += 1
            return error(503, "server-error", "The actor is temporarily unavailable.")
        asins = _asins(body)
        sim.stats.sync_runs += 1
        if len(asins) > sim.sync_max_items:
            sim.stats.sync_timeouts += 1
            return error(
                408,
                "run-timeout-exceeded",
                "Actor run exceeded the timeout of 300 seconds for this API endpoint.",
            )
        return JSONResponse(sim.serve(request.path_params["actor"], body), status_code=201)

    async def start_run(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid-input", "Input is not valid JSON.")
        if request.path_params["actor"] in sim.failing_actors:
            sim.stats.errors += 1
            return error(503, "server-error", "The actor is temporarily unavailable.")
        run = sim.start_run(request.path_params["actor"], body)
        return JSONResponse({"data": sim.run_view(run)}, status_code=201)

    async def get_run(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        run = sim.runs.get(request.path_params["run_id"])
        if run is None:
            return error(404, "record-not-found", "Actor run was not found.")
        return JSONResponse({"data": sim.run_view(run)})

    async def dataset_items(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        items = sim.datasets.get(request.path_params["dataset_id"])
        if items is None:
            return error(404, "record-not-found", "Dataset was not found.")
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
            limit = max(1, min(1000, int(request.query_params.get("limit", "1000"))))
        except ValueError:
            return error(400, "invalid-parameter", "offset/limit must be integers.")
        page = items[offset : offset + limit]
        headers = {
            "x-apify-pagination-offset": str(offset),
            "x-apify-pagination-limit": str(limit),
            "x-apify-pagination-count": str(len(page)),
            "x-apify-pagination-total": str(len(items)),
        }
        return JSONResponse(page, headers=headers)

    async def control_stats(request: Request) -> Response:
        s = sim.stats
        return JSONResponse(
            {
                "requests": s.requests,
                "throttled": s.throttled,
                "errors": s.errors,
                "sync_runs": s.sync_runs,
                "sync_timeouts": s.sync_timeouts,
                "async_runs": s.async_runs,
                "items_served": s.items_served,
                "malformed_served": s.malformed_served,
                "reviews_served": s.reviews_served,
                "distinct_asins": len(s.asins_fetched),
            }
        )

    async def control_config(request: Request) -> Response:
        body = await request.json()
        for name in ("rate_per_s", "burst", "error_rate", "malformed_rate", "sync_max_items", "run_seconds"):
            if name in body:
                setattr(sim, name, type(getattr(sim, name))(body[name]))
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/v2/acts/{actor}/run-sync-get-dataset-items", run_sync, methods=["POST"]),
            Route("/v2/acts/{actor}/runs", start_run, methods=["POST"]),
            Route("/v2/actor-runs/{run_id}", get_run, methods=["GET"]),
            Route("/v2/datasets/{dataset_id}/items", dataset_items, methods=["GET"]),
            Route("/_control/stats", control_stats, methods=["GET"]),
            Route("/_control/config", control_config, methods=["POST"]),
        ]
    )
    app.state.simulator = sim
    return app


def environment(base_url: str) -> dict[str, str]:
    """Variables that point the product_monitor functions at the simulator at ``base_url``."""
    return {"APIFY_API_URL": base_url.rstrip("/")}


def secret_values(base_url: str) -> dict[str, dict[str, str]]:
    return {"product-monitor-apify": {"token": SIM_TOKEN}}


def local_environment(base_url: str) -> dict[str, str]:
    return {**environment(base_url), "APIFY_TOKEN": SIM_TOKEN}


__all__ = [
    "SIM_TOKEN",
    "Served",
    "Simulator",
    "create_app",
    "environment",
    "local_environment",
    "secret_values",
    "serve",
]
