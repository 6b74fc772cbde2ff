"""Planner → queue → worker → staging → promote, through the handlers and sample events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from functions.product_monitor import ingest, repository
from functions.product_monitor.settings import load

OWN = [f"B0OWN{i:05d}" for i in range(240)]
RIVALS = [f"B0RIV{i:05d}" for i in range(10)]


def snapshot(pm) -> dict:
    return {
        "products": pm.sql(
            "SELECT asin, title, updated_at, currency FROM product_monitor.products ORDER BY asin"
        ),
        "metrics": pm.sql(
            "SELECT asin, date, price, rating, bsr, captured_at FROM product_monitor.product_metrics_daily "
            "ORDER BY asin, date"
        ),
        "alerts": pm.sql("SELECT id FROM product_monitor.alerts ORDER BY id"),
        "recommendations": pm.sql("SELECT asin, version FROM product_monitor.recommendations ORDER BY 1, 2"),
        "runs": pm.sql(
            "SELECT id, jobs_succeeded, items_ok, items_failed, cost_usd FROM product_monitor.ingest_runs"
        ),
    }


def test_daily_run_shards_fetches_and_promotes_everything(pm):
    pm.track(OWN)
    for rival in RIVALS:
        repository.link(pm.db, OWN[0], rival, "test", datetime.now(UTC))
    planned = pm.plan()
    assert planned["asins"] == 250 and len(planned["jobs"]) == 3
    sizes = pm.sql(
        "SELECT cardinality(asins) FROM product_monitor.ingest_jobs WHERE run_id = :r ORDER BY seq",
        r=planned["run_id"],
    )
    assert [s[0] for s in sizes] == [84, 83, 83]

    results = pm.drain()
    assert results == [{"batchItemFailures": []}] * 3
    assert pm.scalar("SELECT count(*) FROM product_monitor.product_metrics_daily") == 250
    assert pm.scalar("SELECT count(*) FROM product_monitor.products WHERE updated_at IS NOT NULL") == 250
    assert pm.scalar("SELECT count(*) FROM staging_raw.raw_events WHERE source = 'product'") == 250
    # the reviews actor too: every review item staged, one summary per ASIN
    reviews = pm.sim.stats.reviews_served
    assert reviews == 250 * 10  # maxReviews per ASIN (every simulated ASIN has more than 10)
    assert pm.scalar("SELECT count(*) FROM staging_raw.raw_events WHERE source = 'reviews'") == reviews
    assert pm.scalar("SELECT count(*) FROM product_monitor.review_summaries WHERE reviews_read = 10") == 250
    # stored one row per job and source, the actor's array as received (raw_events is its view)
    batches = pm.sql(
        "SELECT source, count(*), sum(item_count), sum(json_array_length(items)) "
        "FROM staging_raw.raw_batches GROUP BY source ORDER BY source"
    )
    assert [tuple(b) for b in batches] == [("product", 3, 250, 250), ("reviews", 3, reviews, reviews)]
    run = pm.sql(
        "SELECT status, jobs_succeeded, items_ok, reviews_ok, cost_usd, kpis FROM product_monitor.ingest_runs"
    )[0]
    assert run.status == "succeeded" and run.jobs_succeeded == 3 and run.items_ok == 250
    assert run.reviews_ok == reviews and run.kpis["reviews_ok"] == reviews
    assert run.cost_usd == pytest.approx(250 * 0.0025 + reviews * 0.00075)
    assert run.kpis["coverage"] == 1 and run.kpis["job_success_rate"] == 1
    # the own ASIN with competitors got a report and recommendations
    rec = repository.latest_recommendation(pm.db, OWN[0])
    assert rec["generator"] == "rules" and rec["report"]["competitors"] == 10
    assert all(row["price"] is not None for row in rec["report"]["rows"])
    # one version per job that changed what the report reads (its own ASIN's, then the rivals')
    assert rec["version"] == pm.scalar(
        "SELECT count(DISTINCT job_id) FROM product_monitor.product_metrics_daily WHERE asin = ANY(:a)",
        a=[OWN[0], *RIVALS],
    )
    assert set(pm.sim.stats.asins_fetched) == set(OWN) | set(RIVALS)


def test_health_sample_fetches_a_fraction(pm, configure):
    pm.track(OWN)
    with configure(HEALTH_SAMPLE_FRACTION="0.5"):
        planned = pm.plan("health")
    assert planned["kind"] == "health" and planned["asins"] == 120 and len(planned["jobs"]) == 2
    assert pm.scalar("SELECT kind FROM product_monitor.ingest_runs") == "health"


def test_duplicate_delivery_and_replay_change_nothing(pm):
    pm.track(OWN[:60])
    repository.link(pm.db, OWN[0], OWN[1], "test", datetime.now(UTC))
    pm.plan()
    (message,) = pm.receive()
    assert pm.work([message["Body"]]) == {"batchItemFailures": []}
    before = snapshot(pm)
    fetched = pm.sim.stats.items_served

    assert pm.work([message["Body"]], receive_count=2) == {"batchItemFailures": []}
    assert snapshot(pm) == before
    assert pm.sim.stats.items_served == fetched  # not even fetched again

    job_id = uuid.UUID(json.loads(message["Body"])["job_id"])
    totals = ingest.replay(job_id=job_id)
    assert totals["jobs"] == 1 and totals["items"] == 60
    assert totals["metrics_written"] == 0 and totals["products_written"] == 0
    assert snapshot(pm) == before


def test_malformed_items_go_to_the_runs_error_list_not_the_core_tables(pm):
    pm.sim.malformed_rate = 0.3
    pm.track(OWN[:100])
    planned = pm.plan()
    pm.drain()
    job = repository.job_view(pm.db, uuid.UUID(planned["jobs"][0]))
    assert job["status"] == "succeeded"
    product_errors = [e for e in job["errors"] if e["source"] == "product"]
    assert job["items_failed"] == len(product_errors) > 0
    assert job["items_ok"] + job["items_failed"] == 100
    assert {e["reason"] for e in product_errors} & {"missing or invalid asin", "stars is above 5"}
    good = pm.scalar("SELECT count(*) FROM product_monitor.product_metrics_daily")
    assert good == job["items_ok"]
    # an ASIN whose only item was malformed has no metric row, and is reported missing
    assert set(job["missing"]) >= {e["asin"] for e in product_errors if e["asin"]}
    # raw kept, for audit/replay
    assert pm.scalar("SELECT count(*) FROM staging_raw.raw_events WHERE source = 'product'") == 100
    run = pm.sql("SELECT status, items_failed FROM product_monitor.ingest_runs")[0]
    assert run.status == "succeeded" and run.items_failed == job["items_failed"]


def test_a_failure_mid_promotion_leaves_the_core_tables_untouched(pm, monkeypatch):
    pm.track(OWN[:50])
    pm.plan()
    (message,) = pm.receive()
    real = repository.evaluate

    def refused_alert(before, metrics, thresholds):
        # the database refuses the last alert (its check constraint), after the products,
        # metrics and review summaries of the same statement were written
        bogus = {"kind": "bogus", "severity": "info", "message": "x", "details": {}}
        return [*real(before, metrics, thresholds), {**bogus, "asin": OWN[0], "observed_date": date.today()}]

    monkeypatch.setattr(repository, "evaluate", refused_alert)
    result = pm.work([message["Body"]])
    assert len(result["batchItemFailures"]) == 1
    assert pm.scalar("SELECT count(*) FROM product_monitor.product_metrics_daily") == 0
    assert pm.scalar("SELECT count(*) FROM product_monitor.review_summaries") == 0
    assert pm.scalar("SELECT count(*) FROM product_monitor.alerts") == 0
    assert pm.scalar("SELECT count(*) FROM product_monitor.products WHERE updated_at IS NOT NULL") == 0
    assert pm.scalar("SELECT status FROM product_monitor.ingest_jobs") == "running"
    assert pm.scalar("SELECT jobs_succeeded FROM product_monitor.ingest_runs") == 0
    assert pm.scalar("SELECT count(*) FROM staging_raw.raw_events") == 50 * 11  # staged before

    monkeypatch.setattr(repository, "evaluate", real)
    assert pm.work([message["Body"]], receive_count=2) == {"batchItemFailures": []}
    assert pm.scalar("SELECT count(*) FROM product_monitor.product_metrics_daily") == 50
    assert pm.scalar("SELECT count(*) FROM product_monitor.review_summaries") == 50
    assert pm.scalar("SELECT attempts FROM product_monitor.ingest_jobs") == 2


def test_upstream_failure_is_retried_then_fails_the_job_on_its_last_receive(pm, configure):
    pm.sim.error_rate = 1.0
    pm.track(OWN[:50] + OWN[100:160])
    planned = pm.plan()
    messages = pm.receive()
    assert len(messages) == 2
    first, second = messages
    with configure(APIFY_BURST="4"):
        result = pm.work([first["Body"]], receive_count=1)
        assert len(result["batchItemFailures"]) == 1
        assert pm.scalar("SELECT status FROM product_monitor.ingest_jobs WHERE seq = 0") == "running"
        result = pm.work([first["Body"]], receive_count=5)  # the catalog's max_receive_count
        assert len(result["batchItemFailures"]) == 1
    job = repository.job_view(pm.db, uuid.UUID(json.loads(first["Body"])["job_id"]))
    assert job["status"] == "failed" and "503" in job["errors"][0]["reason"]
    pm.sim.error_rate = 0.0
    assert pm.work([second["Body"]]) == {"batchItemFailures": []}
    run = repository.run_view(pm.db, uuid.UUID(planned["run_id"]))
    assert run["status"] == "partial" and run["jobs_failed"] == 1 and run["jobs_succeeded"] == 1


def test_a_bad_record_fails_alone(pm):
    pm.track(OWN[:50])
    pm.plan()
    (message,) = pm.receive()
    result = pm.work([message["Body"], '{"job_id": "not-a-uuid"', json.dumps({"job_id": str(uuid.uuid4())})])
    assert len(result["batchItemFailures"]) == 2
    assert pm.scalar("SELECT status FROM product_monitor.ingest_jobs") == "succeeded"


def test_sample_event_with_poison_reports_only_the_poison_and_the_unknown_job(pm):
    from functions.product_monitor import worker
    from tests.support import LambdaContext, load_event

    event = load_event("product-monitor-worker/batch-with-poison.json")
    result = worker.handler(event, LambdaContext("product-monitor-worker", timeout_s=600))
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )  # the sample job id was never planned here, the other record is not JSON


def test_anomalies_against_the_previous_day_become_alerts_once(pm):
    pm.track(OWN[:50])
    yesterday = date.today() - timedelta(days=1)
    repository.ensure_partitions(pm.db, yesterday, 1)
    pm.db.execute(
        text(
            "INSERT INTO product_monitor.product_metrics_daily "
            "(asin, date, price, rating, bsr, in_stock, captured_at) "
            "VALUES (:a, :d, 100000, 5.0, 1, true, now() - interval '1 day')"
        ),
        {"a": OWN[0], "d": yesterday},
    )
    pm.plan()
    (message,) = pm.receive()
    pm.work([message["Body"]])
    kinds = {r.kind for r in pm.sql("SELECT kind FROM product_monitor.alerts WHERE asin = :a", a=OWN[0])}
    assert {"price_drop", "bsr_jump"} <= kinds
    today = pm.scalar(
        "SELECT rating FROM product_monitor.product_metrics_daily WHERE asin = :a AND date = current_date",
        a=OWN[0],
    )
    assert ("rating_drop" in kinds) == (5 - today >= 0.2)
    count = pm.scalar("SELECT count(*) FROM product_monitor.alerts")
    ingest.replay(job_id=uuid.UUID(json.loads(message["Body"])["job_id"]))
    assert pm.scalar("SELECT count(*) FROM product_monitor.alerts") == count


def test_throttling_lowers_the_shared_pace_instead_of_failing(pm, configure):
    pm.sim.rate_per_s, pm.sim.burst = 3.0, 1
    pm.track(OWN[:50])
    pm.plan()
    (message,) = pm.receive()
    with configure(APIFY_RATE_PER_S="50", APIFY_BURST="50"):
        assert pm.work([message["Body"]]) == {"batchItemFailures": []}
        settings = load()
        assert pm.sim.stats.throttled >= 1
        assert ingest.Pace(settings).current() < 50


def printed(capsys) -> dict:
    """The command's JSON (metric lines of the Lambda runtime's EMF format come before it)."""
    out = capsys.readouterr().out
    return json.loads(out[out.index('{\n  "jobs"') :])


def test_replay_raw_command_rebuilds_core_rows_from_staging(pm, capsys):
    from opsdeck_cli.main import main

    pm.track(OWN[:50])
    planned = pm.plan()
    pm.drain()
    before = snapshot(pm)
    # the core rows are lost (say, a bad manual fix); the raw items are still in staging
    pm.db.execute(text("DELETE FROM product_monitor.product_metrics_daily"))
    pm.db.execute(text("UPDATE product_monitor.products SET updated_at = NULL, title = NULL"))
    reviews_before = pm.sql("SELECT * FROM product_monitor.review_summaries ORDER BY asin")
    pm.db.execute(text("DELETE FROM product_monitor.review_summaries"))
    assert main(["product-monitor", "replay-raw", "--run", planned["run_id"]]) == 0
    totals = printed(capsys)
    assert totals == {
        "jobs": 1,
        "items": 50,
        "malformed": 0,
        "metrics_written": 50,
        "products_written": 50,
        "reviews": 500,
        "review_summaries_written": 50,
    }
    after = snapshot(pm)
    assert after["metrics"] == before["metrics"] and after["products"] == before["products"]
    assert pm.sql("SELECT * FROM product_monitor.review_summaries ORDER BY asin") == reviews_before
    assert main(["product-monitor", "replay-raw", "--job", planned["jobs"][0]]) == 0
    again = printed(capsys)
    assert again["metrics_written"] == 0 and again["review_summaries_written"] == 0  # nothing changes
    assert main(["product-monitor", "replay-raw", "--since", "2026-01-01T00:00:00"]) == 2  # no time zone


def test_the_raw_items_are_staged_as_apify_sent_them_unless_postgres_would_refuse_them(pm):
    from functions.product_monitor.apify import ActorResult

    pm.track(OWN[:2])
    planned = pm.plan()
    now = datetime.now(UTC)
    job = repository.claim_job(pm.db, uuid.UUID(planned["jobs"][0]), now)
    # as received: the text Apify sent, byte for byte (spacing, 12.50, an exponent)
    a, b = OWN[:2]
    sent = '[ {"asin": "' + a + '", "price": 12.50, "stars": 4.5e0},\n {"asin": "' + b + '", "price": 3}]'
    reviews_sent = '[{"asin": "' + a + '", "ratingScore": 5, "note": NaN}]'
    product = ActorResult(json.loads(sent), None, None, "sync", sent.encode())
    reviews = ActorResult(json.loads(reviews_sent), None, None, "sync", reviews_sent.encode())
    landed = ingest.land(job, product, reviews, load(), now)
    assert landed.promotion.status == "promoted" and len(landed.norm.items) == 2 and landed.reviews.ok == 1
    staged = dict(pm.sql("SELECT source, items::text FROM staging_raw.raw_batches"))
    assert staged["product"] == sent
    # NaN: Python's json reads it, PostgreSQL's refuses it: the parsed items are encoded again
    assert json.loads(staged["reviews"]) == [{"asin": a, "ratingScore": 5, "note": None}]
    assert pm.scalar("SELECT count(*) FROM staging_raw.raw_events") == 3


def test_a_later_capture_rewrites_a_product_only_when_its_content_changed(pm):
    """Prices (list price included) are daily metrics: a capture where only they moved rewrites
    the metric row, not the product row; a changed title rewrites the product."""
    asins = OWN[:60]
    versions = "SELECT asin, xmin::text FROM product_monitor.products WHERE asin = ANY(:a)"
    captures = (
        "SELECT asin, captured_at, list_price FROM product_monitor.product_metrics_daily WHERE asin = ANY(:a)"
    )
    pm.track(asins)
    pm.plan()
    pm.drain()
    before = dict(pm.sql(versions, a=asins))
    first = {r.asin: r.captured_at for r in pm.sql(captures, a=asins)}
    rename = "UPDATE product_monitor.products SET title = 'renamed' WHERE asin = :a"
    pm.db.execute(text(rename), {"a": asins[0]})
    renamed = pm.scalar("SELECT xmin::text FROM product_monitor.products WHERE asin = :a", a=asins[0])
    pm.plan()
    assert pm.drain() == [{"batchItemFailures": []}]
    after = dict(pm.sql(versions, a=asins))
    later = pm.sql(captures, a=asins)
    assert len(later) == 60 and all(r.captured_at > first[r.asin] and r.list_price is not None for r in later)
    assert {a for a in asins[1:] if after[a] != before[a]} == set()
    assert after[asins[0]] != renamed
    assert pm.scalar("SELECT title FROM product_monitor.products WHERE asin = :a", a=asins[0]) != "renamed"


def test_a_replayed_older_capture_never_overwrites_what_a_later_capture_saw(pm, capsys):
    """The latest capture wins the product row even when it changed nothing (so did not rewrite
    it): replaying the raw items of an earlier run that saw other content leaves the row alone."""
    from opsdeck_cli.main import main

    asins = OWN[:50]
    product = "SELECT asin, title, updated_at FROM product_monitor.products WHERE asin = ANY(:a) ORDER BY 1"
    pm.track(asins)
    pm.plan()
    pm.drain()
    second = pm.plan()
    pm.drain()
    pm.plan()
    pm.drain()  # the latest capture: the same content as the first, so the row is not rewritten
    latest = pm.sql(product, a=asins)
    # what the second run staged, had Apify shown another title then (say its promotion had failed)
    pm.db.execute(
        text(
            """UPDATE staging_raw.raw_batches SET items = (
                   SELECT json_agg(jsonb_set(e::jsonb, '{title}', '"A title since replaced"'))
                   FROM json_array_elements(items) e)
               WHERE run_id = :r AND source = 'product'"""
        ),
        {"r": second["run_id"]},
    )
    assert main(["product-monitor", "replay-raw", "--run", second["run_id"]]) == 0
    totals = printed(capsys)
    assert totals["items"] == 50 and totals["products_written"] == 0
    assert pm.sql(product, a=asins) == latest
    # with no later capture on record (its metrics gone), the replayed capture is the latest one
    pm.db.execute(text("DELETE FROM product_monitor.product_metrics_daily"))
    assert main(["product-monitor", "replay-raw", "--run", second["run_id"]]) == 0
    assert printed(capsys)["products_written"] == 50
    assert {r.title for r in pm.sql(product, a=asins)} == {"A title since replaced"}
