"""Ingestion: the planner's run, the worker's job, the replay of raw events.

A job (50-100 ASINs) goes:

1. **claim** — ``queued|running|failed → running``, attempts + 1 (a ``succeeded`` job is a
   duplicate delivery: acknowledged, nothing done);
2. **fetch** — the Apify actor through ``ApifyClient`` with the shared pace (Redis token
   bucket; a 429 halves the shared rate, successes bring it back); a run still going at the
   function's deadline is remembered (``apify_run_id``) and resumed by the redelivery, never
   paid twice;
3. **stage** — every item as returned into ``staging_raw.raw_batches`` (in the promotion's
   first statement; staged alone if the promotion fails: kept for audit and replay);
4. **normalise** — defensively; unreadable items, items for ASINs not asked for, and duplicates
   become the job's ``errors`` (the run's error list), never rows;
5. **promote** — ``repository.promote``: all or nothing (products, metrics, review summaries,
   alerts, job, run counters, run KPIs when it was the last job);
6. **after commit** — cache generations bumped for the ASINs written, the reports and
   recommendations of the affected ASINs regenerated (a new version only when the content
   changed), and the new product summaries written through to the cache (the seed's
   "workers update Redis").
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from opsdeck import aws, cache, db
from opsdeck.errors import RateLimited, UpstreamError
from opsdeck.http import TokenBucket
from opsdeck.observability import logger, metric

from . import cachekeys, domain, reports, repository, telemetry, views
from .apify import ActorResult, ApifyClient, RunStillGoing
from .settings import MonitorSettings, apify_token, load

QUEUE = "product-monitor-jobs"
BUCKET_KEY = "pm:apify:bucket"
PACE_KEY = "pm:apify:pace"


def utcnow() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------- pace


class Pace:
    """The shared Apify request rate (Redis): halved on a 429, +10 % per clean job, capped.

    Every worker applies it to its token bucket before each job, so one throttled worker
    slows all of them ("upstream slowdowns lower the pace instead of failing the run").
    """

    def __init__(self, settings: MonitorSettings) -> None:
        self.ceiling = settings.apify_rate_per_s
        self.floor = settings.apify_rate_per_s * settings.apify_min_rate_fraction

    def current(self) -> float:
        import redis

        try:
            raw = cache.client().get(PACE_KEY)
        except (redis.RedisError, OSError):
            return self.ceiling
        try:
            return min(self.ceiling, max(self.floor, float(raw))) if raw is not None else self.ceiling
        except ValueError:
            return self.ceiling

    def _set(self, rate: float) -> None:
        import redis

        with contextlib.suppress(redis.RedisError, OSError):
            cache.client().set(PACE_KEY, repr(rate), ex=3600)

    def slow_down(self) -> float:
        rate = max(self.floor, self.current() / 2)
        self._set(rate)
        return rate

    def recover(self) -> float:
        now = self.current()
        if now >= self.ceiling:
            return now
        rate = min(self.ceiling, now + self.ceiling * 0.1)
        self._set(rate)
        return rate


# --------------------------------------------------------------------- client

_clients: dict[str, tuple[ApifyClient, TokenBucket | None]] = {}
_clients_lock = threading.Lock()
_throttled = threading.local()


def _on_throttle() -> None:
    _throttled.count = getattr(_throttled, "count", 0) + 1


def client_for(settings: MonitorSettings) -> tuple[ApifyClient, TokenBucket | None]:
    """One Apify client per container and configuration (a rotated token builds a new one)."""
    token = apify_token(settings)
    base = settings.apify_base
    fingerprint = hashlib.sha256(f"{base}\0{token}\0{settings.apify_burst}".encode()).hexdigest()
    with _clients_lock:
        found = _clients.get(fingerprint)
        if found is None:
            bucket = _bucket(settings)
            found = (
                ApifyClient(
                    base,
                    token,
                    limiter=bucket,
                    on_throttle=_on_throttle,
                    poll_wait_s=settings.apify_poll_wait_s,
                    page_size=settings.apify_page_size,
                ),
                bucket,
            )
            _clients.clear()
            _clients[fingerprint] = found
    return found


def _bucket(settings: MonitorSettings) -> TokenBucket | None:
    import redis

    try:
        return TokenBucket(cache.client(), BUCKET_KEY, settings.apify_rate_per_s, settings.apify_burst)
    except (redis.RedisError, OSError, Exception) as exc:  # no cache configured: Apify's 429s still pace us
        logger.warning("no shared rate limiter", extra={"error": type(exc).__name__})
        return None


def reset_clients() -> None:
    with _clients_lock:
        for c, _ in _clients.values():
            c.close()
        _clients.clear()


def reviews_input(settings: MonitorSettings, asins: Sequence[str]) -> dict[str, Any]:
    """The reviews actor's input: the product URLs, how many reviews per product, which ones."""
    domain_ = settings.amazon_domain
    return {
        "asins": list(asins),
        "productUrls": [{"url": f"https://www.{domain_}/dp/{a}"} for a in asins],
        "maxReviews": settings.apify_reviews_per_asin,
        "sort": settings.apify_reviews_sort,
    }


def actor_input(settings: MonitorSettings, asins: Sequence[str]) -> dict[str, Any]:
    """The product-details actor's input: product URLs (what Amazon crawlers take) and the ASINs."""
    domain_ = settings.amazon_domain
    return {
        "asins": list(asins),
        "categoryOrProductUrls": [{"url": f"https://www.{domain_}/dp/{a}"} for a in asins],
        "maxItemsPerStartUrl": 1,
        "scrapeProductDetails": True,
    }


# ------------------------------------------------------------------ normalise


def _error(source: str, index: int | None, asin: str | None, reason: str) -> dict[str, Any]:
    return {"source": source, "item_index": index, "asin": asin, "reason": reason}


@dataclass
class Normalisation:
    items: list[domain.Normalised] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def normalise_all(raw: Sequence[Any], asked: Sequence[str], captured: datetime) -> Normalisation:
    wanted = set(asked)
    out = Normalisation()
    seen: set[str] = set()
    for i, item in enumerate(raw):
        try:
            n = domain.normalise(item, captured)
        except domain.Malformed as exc:
            out.errors.append(_error("product", i, domain.item_asin(item), str(exc)))
            continue
        if n.asin not in wanted:
            out.errors.append(_error("product", i, n.asin, "an ASIN the job did not ask for"))
            continue
        if n.asin in seen:
            out.errors.append(_error("product", i, n.asin, "a second item for the same ASIN"))
            continue
        seen.add(n.asin)
        out.items.append(n)
    out.missing = sorted(wanted - seen)
    return out


@dataclass
class ReviewNormalisation:
    summaries: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ok: int = 0


def normalise_reviews(raw: Sequence[Any], asked: Sequence[str], captured: datetime) -> ReviewNormalisation:
    """Review items → one summary per ASIN that has readable reviews; the rest → errors.

    What ``domain.normalise_review`` + ``domain.summarise_reviews`` give, item for item (a unit
    test holds the two to it), without a ``Review`` object per review: the common shape (an
    object naming an ASIN of the job, an integer rating 1-5) is read inline, each review as a
    tuple, its date parsed once per distinct day; anything else goes through
    ``domain.normalise_review`` (same reasons for the error list)."""
    wanted = set(asked)
    readable = {a for a in wanted if domain.valid_asin(a)}
    out = ReviewNormalisation()
    by_asin: dict[str, list[domain.ReviewFacts]] = {}
    seen: set[tuple[str, str]] = set()
    days: dict[str, date | None] = {}  # per distinct date text (ISO: per day)
    ratings: dict[str, int] = {}  # per distinct rating text ("4.0 out of 5 stars")
    flags: dict[str, bool | None] = {}  # per distinct verified text ("Verified Purchase")
    review_date, verified_of, rating_of = domain.review_date, domain._verified, domain._review_rating
    errors = out.errors
    for i, item in enumerate(raw):
        asin = None
        if type(item) is dict and "error" not in item and "errorDescription" not in item:
            asin = item.get("asin") or item.get("productAsin") or item.get("originalAsin")
        if type(asin) is str and asin in readable:  # the common shape
            rating = item.get("ratingScore")
            if rating is None:
                rating = item["rating"] if "rating" in item else item.get("stars")
            if type(rating) is not int or not 1 <= rating <= 5:
                if type(rating) is float and 1 <= rating <= 5:
                    rating = int(rating + 0.5)
                elif type(rating) is str and rating in ratings:
                    rating = ratings[rating]
                else:
                    try:
                        number = rating_of(rating)
                    except domain.Malformed as exc:
                        errors.append(_error("reviews", i, asin, str(exc)))
                        continue
                    if type(rating) is str:
                        ratings[rating] = number
                    rating = number
            review_id = item["reviewId"] if "reviewId" in item else item.get("id")
            when = item["date"] if "date" in item else item.get("reviewDate")
            if type(when) is str:
                key = when[:10] if len(when) >= 10 and when[4] == "-" and when[7] == "-" else when
                day = days.get(key, _NO_DAY)
                if day is _NO_DAY:
                    day = days[key] = review_date(when)
            else:
                day = None
            if "isVerified" in item:
                verified = item["isVerified"]
            elif "verified" in item:
                verified = item["verified"]
            else:
                verified = item.get("verifiedPurchase")
            if type(verified) is not bool and verified is not None:
                if type(verified) is str:
                    found_v = flags.get(verified, _NO_DAY)
                    if found_v is _NO_DAY:
                        found_v = flags[verified] = verified_of(item)
                    verified = found_v
                else:
                    verified = verified_of(item)
            facts = (rating, day, verified, item)
        else:
            try:
                r = domain.normalise_review(item)
            except domain.Malformed as exc:
                errors.append(_error("reviews", i, domain.review_asin(item), str(exc)))
                continue
            if r.asin not in wanted:
                errors.append(_error("reviews", i, r.asin, "an ASIN the job did not ask for"))
                continue
            asin, review_id = r.asin, r.review_id
            facts = (r.rating, r.date, r.verified, item)
        if type(review_id) is str and review_id:
            key2 = (asin, review_id)
            if key2 in seen:
                errors.append(_error("reviews", i, asin, "a second item for the same review"))
                continue
            seen.add(key2)
        found = by_asin.get(asin)
        if found is None:
            by_asin[asin] = [facts]
        else:
            found.append(facts)
        out.ok += 1
    out.summaries = [domain.summarise_facts(a, rs, captured) for a, rs in sorted(by_asin.items())]
    return out


_NO_DAY: Any = object()


# ----------------------------------------------------------------------- plan


def plan(
    kind: str,
    trigger: str,
    *,
    asins: Sequence[str] | None = None,
    now: datetime | None = None,
    settings: MonitorSettings | None = None,
    run_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Record a run with its jobs and enqueue them (after the commit).

    With ``run_id`` the call is idempotent: a run with that id that exists already is answered as
    it stands (``status: already planned``), nothing is planned or sent again.
    """
    settings = settings or load()
    now = now or utcnow()
    if run_id is not None:
        with db.transaction() as conn:
            existing = repository.run_view(conn, run_id)
        if existing is not None:
            return {
                "run_id": str(run_id),
                "kind": existing["kind"],
                "asins": existing["asins_total"],
                "jobs": [str(j["id"]) for j in existing["jobs"]],
                "requeued": 0,
                "status": "already planned",
            }
    with db.transaction() as conn:
        repository.ensure_partitions(conn, now.date(), 3)
        chosen = list(asins) if asins is not None else repository.fetch_set(conn)
        if kind == "health" and asins is None:
            chosen = domain.health_sample(
                chosen, settings.health_sample_fraction, settings.batch_size, f"{now:%Y%m%dT%H}"
            )
        batches = domain.shard(chosen, settings.batch_size, min(50, settings.batch_size))
        stale = repository.stale_queued_jobs(conn, now.replace(microsecond=0) - _STALE_AFTER)
        if not batches:
            run_id, jobs = None, []
        else:
            run_id, jobs = repository.create_run(conn, kind, trigger, batches, now, run_id=run_id)
    messages = [{"job_id": str(j), "run_id": str(run_id)} for j, _ in jobs]
    messages += [{"job_id": str(j), "run_id": str(r)} for j, r in stale]
    if messages:
        aws.send_messages(QUEUE, messages)
    metric("IngestJobsPlanned", len(jobs))
    return {
        "run_id": str(run_id) if run_id else None,
        "kind": kind,
        "asins": sum(len(a) for _, a in jobs),
        "jobs": [str(j) for j, _ in jobs],
        "requeued": len(stale),
        "status": "running" if jobs else "nothing to fetch",
    }


#: a job still queued this long after its run was planned lost its message: sent again
_STALE_AFTER = timedelta(hours=1)


# ------------------------------------------------------------------------ job


@dataclass
class JobOutcome:
    job_id: str
    status: str  # promoted | duplicate | deferred
    items_ok: int = 0
    items_failed: int = 0
    missing: int = 0
    alerts: int = 0
    reviews_ok: int = 0
    reviews_failed: int = 0
    cost_usd: str | None = None
    run_closed: bool = False
    mode: str | None = None


class Deferred(Exception):
    """The job is not done yet and must be delivered again (its message stays on the queue)."""


def process_job(
    job_id: uuid.UUID,
    *,
    last_attempt: bool,
    deadline: float | None = None,
    settings: MonitorSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> JobOutcome:
    settings = settings or load()
    with db.transaction() as conn:
        job = repository.claim_job(conn, job_id, utcnow())
    if job is None:
        metric("IngestJobDuplicate")
        return JobOutcome(str(job_id), "duplicate")
    client, bucket = client_for(settings)
    pace = Pace(settings)
    if bucket is not None:
        bucket.set_rate(pace.current())
    _throttled.count = 0

    def fetch(source: str, actor: str, actor_input_: dict[str, Any], resume: str | None) -> ActorResult:
        def remember(run_id: str) -> None:
            with db.transaction() as conn:
                repository.record_apify_run(conn, job.id, run_id, source)

        try:
            return client.run_actor(
                actor,
                actor_input_,
                mode=settings.apify_run_mode,
                deadline=deadline,
                resume_run_id=resume,
                on_started=remember,
                run_timeout_s=settings.apify_run_timeout_s,
            )
        except RunStillGoing as exc:
            raise Deferred(
                f"Apify run {exc.run_id} ({source}) still going at the deadline; resumed on redelivery"
            ) from None
        except (RateLimited, UpstreamError) as exc:
            if isinstance(exc, RateLimited) or getattr(_throttled, "count", 0):
                pace.slow_down()
            telemetry.observe_upstream(throttled=getattr(_throttled, "count", 0), retried_jobs=1)
            raise

    try:
        result = fetch("product", settings.apify_actor, actor_input(settings, job.asins), job.apify_run_id)
    except (RateLimited, UpstreamError) as exc:
        if last_attempt:
            with db.transaction() as conn:
                repository.fail_job(conn, job, exc.detail or type(exc).__name__, utcnow())
        raise
    reviews: ActorResult | None = None
    reviews_error: str | None = None
    if settings.apify_reviews_actor:
        try:
            reviews = fetch(
                "reviews",
                settings.apify_reviews_actor,
                reviews_input(settings, job.asins),
                job.apify_reviews_run_id,
            )
        except (RateLimited, UpstreamError) as exc:
            if not last_attempt:
                raise  # redelivered: the product run is resumed by its id, not paid again
            # the last receive: the product details are not lost for want of their reviews
            reviews_error = f"reviews actor: {exc.detail or type(exc).__name__}"[:300]
    throttled = getattr(_throttled, "count", 0)
    if throttled:
        pace.slow_down()
        telemetry.observe_upstream(throttled=throttled)
    else:
        pace.recover()
    landed = land(job, result, reviews, settings, utcnow(), reviews_error=reviews_error)
    norm, rnorm, done = landed.norm, landed.reviews, landed.promotion
    if done.status == "duplicate":
        return JobOutcome(str(job_id), "duplicate")
    after_write(done.asins, trigger=f"job:{job.id}")
    metric("IngestItemsPromoted", len(norm.items))
    if norm.errors or rnorm.errors:
        metric("IngestItemsMalformed", len(norm.errors) + len(rnorm.errors))
    return JobOutcome(
        str(job_id),
        "promoted",
        items_ok=len(norm.items),
        items_failed=len(norm.errors),
        missing=len(norm.missing),
        alerts=done.alerts_new,
        reviews_ok=rnorm.ok,
        reviews_failed=len(rnorm.errors),
        cost_usd=None if landed.cost is None else format(landed.cost, "f"),
        run_closed=done.run_closed,
        mode=result.mode,
    )


@dataclass
class Landed:
    norm: Normalisation
    reviews: ReviewNormalisation
    promotion: repository.Promotion
    cost: Decimal | None


def land(
    job: repository.Job,
    result: ActorResult,
    reviews: ActorResult | None,
    settings: MonitorSettings,
    received: datetime,
    *,
    reviews_error: str | None = None,
    thresholds: domain.Thresholds | None = None,
) -> Landed:
    """What the worker does with a job's Apify items: normalise them, then stage and promote them
    in ONE transaction of two round trips (one WAL flush). When the promotion fails, the raw
    items are staged on their own after the rollback (kept for audit and replay) and the error
    is raised. (A worker killed mid-transaction stages nothing: its job is redelivered, the Apify
    runs are resumed by their ids and their datasets read again.)"""
    review_items = reviews.items if reviews is not None else []
    raw = repository.RawItems(
        job.attempts,
        received,
        settings.apify_actor,
        result.items,
        settings.apify_reviews_actor,
        review_items,
        repository.as_received(result.raw),
        repository.as_received(reviews.raw) if reviews is not None else None,
    )
    norm = normalise_all(result.items, job.asins, received)
    rnorm = normalise_reviews(review_items, job.asins, received)
    errors = norm.errors + rnorm.errors
    if reviews_error is not None:
        errors.append(_error("reviews", None, None, reviews_error))
    costs = [c for c in (result.cost_usd, reviews.cost_usd if reviews is not None else None) if c is not None]
    cost = sum(costs, Decimal(0)) if costs else None
    try:
        with db.transaction() as conn:
            done = repository.promote(
                conn,
                job.id,
                job.run_id,
                norm.items,
                errors,
                norm.missing,
                cost,
                thresholds or thresholds_of(settings),
                received,
                reviews=rnorm.summaries,
                reviews_ok=rnorm.ok,
                reviews_failed=len(rnorm.errors) + (reviews_error is not None),
                raw=raw,
            )
    except Exception:
        try:
            with db.transaction() as conn:
                repository.write_raw(conn, job, raw)
        except Exception as exc:  # the database is gone: the original error says more
            logger.warning("raw items not staged", extra={"job_id": str(job.id), "error": type(exc).__name__})
        raise
    return Landed(norm, rnorm, done, cost)


def thresholds_of(settings: MonitorSettings) -> domain.Thresholds:
    return domain.Thresholds(
        price_drop_pct=settings.price_drop_pct,
        price_spike_pct=settings.price_spike_pct,
        rating_drop=settings.rating_drop,
        bsr_jump_pct=settings.bsr_jump_pct,
    )


def after_write(asins: Sequence[str], *, trigger: str) -> list[str]:
    """Cache generations of what changed, then the reports that depend on it regenerated."""
    if not asins:
        return []
    with db.transaction() as conn:
        affected = sorted(set(asins) | set(repository.linked_to(conn, asins)))
    cachekeys.invalidate(affected)
    with db.transaction() as conn:
        changed = reports.regenerate(conn, affected, trigger=trigger)
    if changed:
        cachekeys.invalidate(changed)
    with db.transaction() as conn:
        views.write_through(conn, asins)
    return affected


# --------------------------------------------------------------------- replay


def replay(
    *,
    job_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    since: datetime | None = None,
    settings: MonitorSettings | None = None,
) -> dict[str, Any]:
    """Re-normalise staged raw items into the core tables (idempotent: same rows, no new alerts)."""
    settings = settings or load()
    thresholds = thresholds_of(settings)
    with db.transaction() as conn:
        batches = repository.raw_items(conn, job_id=job_id, run_id=run_id, since=since)
    totals = {
        "jobs": 0,
        "items": 0,
        "malformed": 0,
        "metrics_written": 0,
        "products_written": 0,
        "reviews": 0,
        "review_summaries_written": 0,
    }
    for batch in batches:
        with db.transaction() as conn:
            asked = repository.job_asins(conn, batch.job_id)
            norm = normalise_all(batch.items, asked, batch.received_at)
            rnorm = normalise_reviews(batch.reviews, asked, batch.received_at)
            done = repository.promote(
                conn,
                batch.job_id,
                batch.run_id,
                norm.items,
                norm.errors + rnorm.errors,
                norm.missing,
                None,
                thresholds,
                batch.received_at,
                reviews=rnorm.summaries,
                reviews_ok=rnorm.ok,
                reviews_failed=len(rnorm.errors),
                replay=True,
            )
        after_write(done.asins, trigger=f"replay:{batch.job_id}")
        totals["jobs"] += 1
        totals["items"] += len(norm.items)
        totals["malformed"] += len(norm.errors)
        totals["metrics_written"] += done.metrics_written
        totals["products_written"] += done.products
        totals["reviews"] += rnorm.ok
        totals["review_summaries_written"] += done.reviews_written
    return totals


__all__ = ["Deferred", "Pace", "land", "normalise_all", "normalise_reviews", "plan", "process_job", "replay"]
