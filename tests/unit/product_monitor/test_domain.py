"""Normalisation of the shapes actors produce, sharding, anomaly rules, recommendations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from functions.product_monitor import domain
from functions.product_monitor.domain import Malformed, Thresholds, normalise

NOW = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)


def test_price_object_and_crumb_string_and_instock():
    n = normalise(
        {
            "asin": "b0cx23v2zk",
            "title": "  Echo   Dot ",
            "price": {"value": 49.99, "currency": "$"},
            "listPrice": {"value": "59.99", "currency": "USD"},
            "stars": 4.7,
            "reviewsCount": 12034,
            "breadCrumbs": "Electronics \u203a Smart Home \u203a Speakers",
            "bestsellerRanks": [{"rank": 120, "category": "Everything"}, {"rank": 3, "category": "Speakers"}],
            "inStock": True,
            "thumbnailImage": "https://m.media-amazon.com/x.jpg",
        },
        NOW,
    )
    assert n.asin == "B0CX23V2ZK"
    assert n.product["title"] == "Echo Dot" and n.product["category"] == "Speakers"
    assert n.product["breadcrumbs"] == ["Electronics", "Smart Home", "Speakers"]
    assert n.metric["price"] == Decimal("49.9900") and n.metric["currency"] == "USD"
    assert n.metric["list_price"] == Decimal("59.9900")
    assert (n.metric["bsr"], n.metric["bsr_category"]) == (3, "Speakers")
    assert n.metric["rating"] == Decimal("4.70") and n.metric["reviews_count"] == 12034
    assert n.metric["in_stock"] is True and n.metric["date"] == date(2026, 12, 3)


def test_number_price_crumb_list_and_availability_text():
    n = normalise(
        {
            "asin": "B000000001",
            "price": 19.5,
            "breadCrumbs": [{"name": "Home"}, "Kitchen"],
            "availability": "Currently unavailable.",
            "stars": "4.5 out of 5 stars",
            "reviewsCount": "1,234",
            "bestsellersRank": 77,
        },
        NOW,
    )
    assert n.metric["price"] == Decimal("19.5000") and n.metric["currency"] is None
    assert n.product["breadcrumbs"] == ["Home", "Kitchen"]
    assert n.metric["in_stock"] is False
    assert n.metric["rating"] == Decimal("4.50") and n.metric["reviews_count"] == 1234
    assert n.metric["bsr"] == 77


def test_price_text_with_symbol_and_missing_fields():
    n = normalise({"asin": "B000000002", "price": "£1,299.00"}, NOW)
    assert n.metric["price"] == Decimal("1299.0000") and n.metric["currency"] == "GBP"
    assert n.metric["rating"] is None and n.metric["in_stock"] is None and n.product["breadcrumbs"] is None


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("<html>", "not an object"),
        ({"title": "x"}, "asin"),
        ({"asin": "SHORT"}, "asin"),
        ({"asin": "B000000003", "price": "see options"}, "price is not a number"),
        ({"asin": "B000000003", "stars": 7}, "stars is above 5"),
        ({"asin": "B000000003", "price": -1}, "negative"),
        ({"asin": "B000000003", "price": float("nan")}, "not finite"),
        ({"asin": "B000000003", "reviewsCount": True}, "boolean"),
        ({"asin": "B000000003", "bestsellerRanks": {"rank": "abc"}}, "bestsellerRanks"),
        ({"asin": "B000000003", "error": "captcha"}, "actor reported"),
    ],
)
def test_malformed_items_name_their_reason(item, reason):
    with pytest.raises(Malformed, match=reason):
        normalise(item, NOW)


def test_urls_other_than_https_are_dropped():
    n = normalise({"asin": "B000000004", "url": "javascript:alert(1)", "thumbnailImage": "http://x"}, NOW)
    assert n.product["url"] is None and n.product["image_url"] is None


@pytest.mark.parametrize(
    ("n", "sizes"), [(0, []), (7, [7]), (100, [100]), (101, [51, 50]), (250, [84, 83, 83])]
)
def test_shard_into_even_batches_of_at_most_100(n, sizes):
    asins = [f"B{i:09d}" for i in range(n)]
    batches = domain.shard(asins, 100, 50)
    assert [len(b) for b in batches] == sizes
    assert [a for b in batches for a in b] == asins


def test_shard_drops_duplicates_and_never_goes_below_the_minimum():
    asins = [f"B{i:09d}" for i in range(5000)] * 2
    batches = domain.shard(asins, 100, 50)
    assert len(batches) == 50 and all(len(b) == 100 for b in batches)
    for n in range(50, 1001, 7):
        assert all(50 <= len(b) <= 100 for b in domain.shard([f"B{i:09d}" for i in range(n)], 100, 50))


def test_health_sample_takes_at_least_one_batch_and_a_fraction():
    asins = [f"B{i:09d}" for i in range(2000)]
    sample = domain.health_sample(asins, 0.1, 100, "2026-12-03T06")
    assert len(sample) == 200 and set(sample) <= set(asins)
    assert domain.health_sample(asins, 0.1, 100, "2026-12-03T06") == sample
    assert len(domain.health_sample(asins[:30], 0.1, 100, "s")) == 30


def m(**kw):
    base = {"asin": "B000000001", "date": date(2026, 12, 3), "price": None, "rating": None, "bsr": None}
    base.update(kw)
    return base


def kinds(prev, cur, t=Thresholds()):
    return sorted(a["kind"] for a in domain.anomalies(prev, cur, t))


def test_anomaly_rules_at_their_thresholds():
    d = Decimal
    assert kinds(m(price=d("100")), m(price=d("90"))) == ["price_drop"]
    assert kinds(m(price=d("100")), m(price=d("90.01"))) == []
    assert kinds(m(price=d("100")), m(price=d("115"))) == ["price_spike"]
    assert kinds(m(rating=d("4.5")), m(rating=d("4.3"))) == ["rating_drop"]
    assert kinds(m(rating=d("4.5")), m(rating=d("4.4"))) == []
    assert kinds(m(bsr=100), m(bsr=150)) == ["bsr_jump"]
    assert kinds(m(bsr=100), m(bsr=149)) == []
    assert kinds(m(in_stock=True), m(in_stock=False)) == ["out_of_stock"]
    assert kinds(m(in_stock=False), m(in_stock=False)) == []
    assert kinds(None, m(in_stock=False, price=d("1"))) == ["out_of_stock"]
    strict = Thresholds(price_drop_pct=d("5"))
    assert kinds(m(price=d("100")), m(price=d("94")), strict) == ["price_drop"]
    (alert,) = domain.anomalies(m(price=d("100")), m(price=d("80")), Thresholds())
    assert alert["details"] == {"old": "100", "new": "80", "change_pct": "-20.00"}


def test_recommendations_are_rule_based_and_deterministic():
    own = {
        "asin": "B000000001",
        "price": Decimal("30"),
        "rating": Decimal("3.9"),
        "reviews_count": 10,
        "bsr": 900,
    }
    comps = [
        {
            "asin": f"B00000000{i}",
            "price": Decimal(p),
            "rating": Decimal("4.5"),
            "reviews_count": 500,
            "bsr": 100,
        }
        for i, p in ((2, "20"), (3, "22"), (4, "24"))
    ]
    report, items = domain.recommend(own, comps)
    assert report["price_position"] == 4 and report["market"]["median_price"] == "22"
    codes = {i["code"] for i in items}
    assert codes == {"price_above_market", "improve_rating", "grow_reviews", "improve_rank"}
    assert domain.content_hash(report, items) == domain.content_hash(*domain.recommend(own, comps))
    _, lonely = domain.recommend(own, [])
    assert [i["code"] for i in lonely] == ["add_competitors"]


# ------------------------------------------------------------------------- reviews


@pytest.mark.parametrize(
    ("item", "rating", "day", "verified"),
    [
        (
            {
                "asin": "B0TEST0001",
                "ratingScore": 4,
                "reviewTitle": "ok",
                "date": "2026-11-30",
                "isVerified": True,
            },
            4,
            date(2026, 11, 30),
            True,
        ),
        (
            {
                "productAsin": "b0test0001",
                "rating": "2.0 out of 5 stars",
                "date": "Reviewed in the United States on March 3, 2024",
                "verified": "Verified Purchase",
            },
            2,
            date(2024, 3, 3),
            True,
        ),
        (
            {"asin": "B0TEST0001", "rating": 5.0, "date": "2026-01-02T10:00:00.000Z", "verified": False},
            5,
            date(2026, 1, 2),
            False,
        ),
        (
            {
                "asin": "B0TEST0001",
                "ratingScore": 1,
                "date": "Reviewed in the United Kingdom on 3 March 2024",
            },
            1,
            date(2024, 3, 3),
            None,
        ),
        ({"asin": "B0TEST0001", "ratingScore": 3, "date": "February 30, 2024"}, 3, None, None),
    ],
)
def test_review_items_normalise_across_actor_shapes(item, rating, day, verified):
    r = domain.normalise_review(item)
    assert (r.asin, r.rating, r.date, r.verified) == ("B0TEST0001", rating, day, verified)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("<html>", "not an object"),
        ({"ratingScore": 5}, "missing or invalid asin"),
        ({"asin": "B0TEST0001"}, "review rating missing"),
        ({"asin": "B0TEST0001", "ratingScore": 6}, "outside 1-5"),
        ({"asin": "B0TEST0001", "ratingScore": 0}, "outside 1-5"),
        ({"asin": "B0TEST0001", "rating": "n/a"}, "not a number"),
        ({"asin": "B0TEST0001", "ratingScore": True}, "missing"),
        ({"asin": "B0TEST0001", "ratingScore": 5, "error": "blocked"}, "actor reported an error"),
    ],
)
def test_unreadable_review_items_are_malformed(item, reason):
    with pytest.raises(domain.Malformed, match=reason):
        domain.normalise_review(item)


def test_review_summary_counts_and_snippets():
    now = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)
    items = [
        {
            "asin": "B0TEST0001",
            "ratingScore": 1,
            "reviewTitle": "old bad",
            "date": "2026-11-01",
            "isVerified": True,
        },
        {
            "asin": "B0TEST0001",
            "ratingScore": 2,
            "reviewTitle": "new bad",
            "date": "2026-12-01",
            "isVerified": False,
        },
        {
            "asin": "B0TEST0001",
            "ratingScore": 5,
            "reviewTitle": "great",
            "date": "2026-11-20",
            "isVerified": True,
        },
        {"asin": "B0TEST0001", "ratingScore": 4, "reviewDescription": "x" * 500, "date": "2026-12-02"},
    ]
    summary = domain.summarise_reviews("B0TEST0001", [domain.normalise_review(i) for i in items], now)
    assert summary["reviews_read"] == 4 and summary["histogram"] == [1, 1, 0, 1, 1]
    assert summary["average_rating"] == Decimal("3.00")
    assert summary["verified_share"] == Decimal("0.6667")  # of the three that say
    assert summary["latest_review_date"] == date(2026, 12, 2)
    assert [s["title"] for s in summary["negative"]] == ["old bad", "new bad"]  # lowest rating first
    assert [s["rating"] for s in summary["positive"]] == [5, 4]
    assert len(summary["positive"][1]["text"]) == domain.SNIPPET_TEXT
    assert domain.low_rating_share(summary) == Decimal("0.5")


def test_a_high_share_of_low_ratings_recommends_addressing_review_themes():
    own = {"asin": "B0TEST0001", "price": Decimal("10"), "rating": Decimal("4.0")}
    bad = {"reviews_read": 10, "histogram": [2, 1, 1, 2, 4], "negative": [{"title": "Broke"}]}
    good = {**bad, "histogram": [1, 0, 1, 3, 5]}
    _, items = domain.recommend(own, [], bad)
    (theme,) = [i for i in items if i["code"] == "address_review_themes"]
    assert "30%" in theme["text"] and "Broke" in theme["text"]
    assert "address_review_themes" not in {i["code"] for i in domain.recommend(own, [], good)[1]}
    few = {**bad, "reviews_read": 3, "histogram": [2, 1, 0, 0, 0]}
    assert "address_review_themes" not in {i["code"] for i in domain.recommend(own, [], few)[1]}
    report, _ = domain.recommend(own, [], bad)
    assert report["reviews"]["low_rating_share"] == "0.3000"
