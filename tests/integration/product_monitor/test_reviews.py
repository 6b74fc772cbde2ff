"""The reviews summary: the reviews actor through the worker's handler (SQS events), its raw
items staged, one summary per ASIN per day promoted with the product items, malformed review
items in the run's error list, the summary in GET /v1/products/{asin} and in the rules."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from decimal import Decimal

from sqlalchemy import text

from functions.product_monitor import domain, repository

OWN = [f"B0REV{i:05d}" for i in range(60)]


def test_reviews_are_fetched_staged_summarised_and_shown(pm):
    pm.track(OWN)
    pm.plan()
    assert pm.drain() == [{"batchItemFailures": []}]
    asin = OWN[3]
    raw = [
        r[0]
        for r in pm.sql(
            "SELECT item FROM staging_raw.raw_events WHERE source = 'reviews' AND asin = :a "
            "ORDER BY item_index",
            a=asin,
        )
    ]
    assert len(raw) == 10
    ratings = [domain.normalise_review(item).rating for item in raw]
    row = pm.sql("SELECT * FROM product_monitor.review_summaries WHERE asin = :a", a=asin)[0]
    assert row.reviews_read == 10
    assert row.histogram == [Counter(ratings)[star] for star in range(1, 6)]
    assert row.average_rating == (Decimal(sum(ratings)) / 10).quantize(Decimal("0.01"))
    assert row.latest_review_date is not None

    status, _headers, body = pm.call("GET", f"/v1/products/{asin}")
    assert status == 200
    reviews = body["reviews"]
    assert reviews["reviews_read"] == 10 and reviews["histogram"] == row.histogram
    assert reviews["average_rating"] == format(row.average_rating, "f")
    assert all(s["rating"] <= 2 for s in reviews["negative"]) and len(reviews["negative"]) <= 3
    assert all(s["rating"] >= 4 for s in reviews["positive"]) and len(reviews["positive"]) <= 3
    # the snippets are the newest of their kind
    dates = [s["date"] for s in reviews["positive"] if s["rating"] == 5]
    assert dates == sorted(dates, reverse=True)


def test_a_new_day_of_reviews_moves_the_summary_and_the_product_shows_the_latest(pm):
    pm.track(OWN[:50])
    pm.plan()
    pm.drain()
    asin = OWN[0]
    # yesterday's summary, as a day earlier would have left it
    pm.db.execute(
        text(
            "UPDATE product_monitor.review_summaries SET date = date - 1, captured_at = captured_at - "
            "interval '1 day'"
        )
    )
    pm.sim.products[asin].reviews += 7  # seven new reviews since
    from functions.product_monitor import cachekeys

    cachekeys.invalidate([asin])
    pm.plan()
    pm.drain()
    rows = pm.sql(
        "SELECT date, positive, negative FROM product_monitor.review_summaries WHERE asin = :a ORDER BY date",
        a=asin,
    )
    assert len(rows) == 2
    _, _, body = pm.call("GET", f"/v1/products/{asin}")
    assert body["reviews"]["date"] == rows[-1].date.isoformat()


def test_malformed_review_items_go_to_the_error_list_not_the_summaries(pm):
    pm.sim.malformed_rate = 0.05  # the error list is capped at 100 entries
    pm.track(OWN[:50])
    planned = pm.plan()
    pm.drain()
    job = repository.job_view(pm.db, uuid.UUID(planned["jobs"][0]))
    review_errors = [e for e in job["errors"] if e["source"] == "reviews"]
    assert job["status"] == "succeeded" and review_errors
    assert job["reviews_failed"] == len(review_errors)
    assert {e["reason"] for e in review_errors} <= {
        "missing or invalid asin",
        "review rating is outside 1-5",
        "review rating is not a number: 'n/a'",
        "review item is a list, not an object",
    }
    staged = pm.scalar("SELECT count(*) FROM staging_raw.raw_events WHERE source = 'reviews'")
    assert job["reviews_ok"] + job["reviews_failed"] == staged == 500
    assert pm.scalar("SELECT sum(reviews_read) FROM product_monitor.review_summaries") == job["reviews_ok"]
    run = pm.sql("SELECT reviews_failed FROM product_monitor.ingest_runs")[0]
    assert run.reviews_failed == job["reviews_failed"]


def test_reviews_actor_down_is_retried_then_products_land_without_reviews(pm):
    from functions.product_monitor.settings import load

    pm.sim.failing_actors = {load().apify_reviews_actor}
    pm.track(OWN[:50])
    pm.plan()
    (message,) = pm.receive()
    result = pm.work([message["Body"]], receive_count=1)
    assert len(result["batchItemFailures"]) == 1  # redelivered: nothing promoted yet
    assert pm.scalar("SELECT count(*) FROM product_monitor.product_metrics_daily") == 0
    product_runs = pm.sim.stats.async_runs

    result = pm.work([message["Body"]], receive_count=5)  # the last receive
    assert result == {"batchItemFailures": []}
    assert pm.sim.stats.async_runs == product_runs  # the product run was resumed, not paid again
    job = repository.job_view(pm.db, uuid.UUID(json.loads(message["Body"])["job_id"]))
    assert job["status"] == "succeeded" and job["items_ok"] == 50
    assert job["errors"][-1]["source"] == "reviews" and "503" in job["errors"][-1]["reason"]
    assert pm.scalar("SELECT count(*) FROM product_monitor.review_summaries") == 0
    _, _, body = pm.call("GET", f"/v1/products/{OWN[0]}")
    assert body["reviews"] is None and body["latest"] is not None


def test_many_low_ratings_recommend_addressing_review_themes(pm):
    pm.track(OWN[:50])
    pm.plan()
    pm.drain()
    rows = pm.sql("SELECT asin, histogram FROM product_monitor.review_summaries")
    low = {r.asin for r in rows if (r.histogram[0] + r.histogram[1]) / 10 >= 0.2}
    high = {r.asin for r in rows} - low
    assert low and high  # the simulated qualities differ
    for asin in (sorted(low)[0], sorted(high)[0]):
        status, _, body = pm.call("GET", f"/v1/recommendations/{asin}")
        assert status == 200
        codes = {i["code"] for i in body["items"]}
        assert ("address_review_themes" in codes) == (asin in low)
        status, _, report = pm.call("GET", f"/v1/competitions/{asin}/report")
        assert status == 200 and report["report"]["reviews"]["reviews_read"] == 10
