"""The ingest's normalisation of a job gives what the per-item reference functions give.

``ingest.normalise_reviews`` reads the common review shape inline (no ``Review`` per review):
it must agree with ``domain.normalise_review`` + ``domain.summarise_reviews`` item for item on
every shape the simulator produces, malformed items included, and on hand-written odd ones.
``ingest.normalise_all`` must keep ``domain.normalise``'s rows and reasons, the first item of an
ASIN winning.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from functions.product_monitor import domain, ingest, simulator

NOW = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)
ASINS = [f"B0FAST{i:04d}" for i in range(60)]


def _reference_reviews(raw, asked, captured):
    """The review normalisation before the fast path (one ``Review`` per item)."""
    wanted = set(asked)
    errors, by_asin, seen, ok = [], {}, set(), 0
    for i, item in enumerate(raw):
        try:
            r = domain.normalise_review(item)
        except domain.Malformed as exc:
            errors.append(ingest._error("reviews", i, domain.review_asin(item), str(exc)))
            continue
        if r.asin not in wanted:
            errors.append(ingest._error("reviews", i, r.asin, "an ASIN the job did not ask for"))
            continue
        if r.review_id is not None:
            if (r.asin, r.review_id) in seen:
                errors.append(ingest._error("reviews", i, r.asin, "a second item for the same review"))
                continue
            seen.add((r.asin, r.review_id))
        by_asin.setdefault(r.asin, []).append(r)
        ok += 1
    return [domain.summarise_reviews(a, rs, captured) for a, rs in sorted(by_asin.items())], errors, ok


_ODD_REVIEWS = [
    {"asin": "b0fast0001", "ratingScore": 4, "date": "2026-11-30"},  # lower case: slow path, accepted
    {"asin": " B0FAST0002 ", "rating": "2.0 out of 5 stars"},
    {"asin": "B0OTHER001", "ratingScore": 5},  # not asked for
    {"asin": "B0FAST0003", "ratingScore": 5, "reviewId": "R1", "date": "2026-02-30"},
    {"asin": "B0FAST0003", "ratingScore": 1, "reviewId": "R1"},  # same review twice
    {"asin": "B0FAST0003", "ratingScore": 3, "reviewId": "", "date": "Reviewed on March 3, 2024"},
    {"asin": "B0FAST0003", "ratingScore": 2, "date": "Reviewed in Germany on 3 Mai 2024"},
    {"asin": "B0FAST0004", "ratingScore": None, "rating": 4.6, "isVerified": None, "verified": True},
    {"asin": "B0FAST0004", "ratingScore": True},
    {"asin": "B0FAST0004", "ratingScore": 7},
    {"asin": "B0FAST0004", "ratingScore": 4, "error": "blocked"},
    {"asin": ["B0FAST0004"], "ratingScore": 4},
    {"productAsin": "B0FAST0005", "stars": 5, "date": 20240303, "verified": "Verified Purchase"},
    {"originalAsin": "B0FAST0005", "ratingScore": 1, "reviewDate": "2026-12-01T08:00:00Z", "body": "x" * 400},
    "<html>",
    ["not", "an", "object"],
]


@pytest.mark.parametrize("malformed_rate", [0.0, 0.2])
def test_fast_review_path_equals_the_reference(malformed_rate):
    sim = simulator.Simulator(seed=3, malformed_rate=malformed_rate)
    raw = [r for a in ASINS for r in sim.reviews(a, 12)] + copy.deepcopy(_ODD_REVIEWS)
    asked = [*ASINS, "B0FAST0001"]
    got = ingest.normalise_reviews(raw, asked, NOW)
    summaries, errors, ok = _reference_reviews(raw, asked, NOW)
    assert got.summaries == summaries
    assert got.errors == errors
    assert got.ok == ok


_ODD_PRODUCTS = [
    {"asin": "b0fast0001", "price": "$1,299.00", "stars": "4.5 out of 5 stars", "breadCrumbs": "A > B"},
    {"asin": "B0FAST0002", "price": {"amount": "3.50", "currency": "EUR"}, "salesRank": 12},
    {"asin": "B0FAST0003", "price": 12.5, "stars": 7.5},
    {"asin": "B0FAST0004", "price": "see options"},
    {"asin": "B0FAST0005", "price": True},
    {"asin": "B0FAST0006", "price": float("inf")},
    {
        "asin": "B0FAST0007",
        "bestsellerRanks": {"rank": 4, "categoryName": "X"},
        "availability": {"text": "Sold out"},
    },
    {"asin": "B0FAST0008", "bestsellerRanks": "nope"},
    {"asin": "B0FAST0009", "bestsellerRanks": [{"rank": 0}, 5, {"rank": "1,234"}], "inStock": "yes"},
    {
        "ASIN": "B0FAST0010",
        "breadCrumbs": [{"name": "A"}, {"title": "B"}, 3, None],
        "images": ["https://i/x.jpg"],
    },
    {"asin": "B0FAST0011", "url": "http://insecure", "thumbnailImage": "http://x", "reviewsCount": "1,024"},
    {"asin": "B0FAST0012", "title": "  spaced   out\\n title ", "brand": None, "manufacturer": "M"},
    {"asin": "B0FAST0013", "listPrice": 10, "price": None, "stars": None, "rating": 4.2},
    {"asin": "B0FAST0014", "price": 1e12},
    {"asin": "B0FAST0015", "reviewsCount": -3},
    {"title": "no asin"},
    {"asin": "B0FAST0016", "errorDescription": "captcha"},
    "<html>captcha</html>",
]


@pytest.mark.parametrize("malformed_rate", [0.0, 0.2])
def test_product_normalisation_of_a_job_keeps_the_per_item_results(malformed_rate):
    sim = simulator.Simulator(seed=4, malformed_rate=malformed_rate)
    raw = [sim.item(a) for a in ASINS] + [sim.item(a) for a in ASINS[:5]] + copy.deepcopy(_ODD_PRODUCTS)
    asked = [*ASINS, *(f"B0FAST{i:04d}" for i in range(1, 17))]
    got = ingest.normalise_all(raw, asked, NOW)
    items, errors = [], []
    for i, item in enumerate(raw):
        try:
            items.append((i, domain.normalise(item, NOW)))
        except domain.Malformed as exc:
            errors.append((i, str(exc)))
    readable = {i: n for i, n in items}
    assert [(e["item_index"], e["reason"]) for e in got.errors if e["item_index"] not in readable] == errors
    firsts = {}
    for _, n in items:
        firsts.setdefault(n.asin, n)
    assert [n.asin for n in got.items] == [n.asin for n in firsts.values() if n.asin in set(asked)]
    assert [(n.product, n.metric) for n in got.items] == [
        (n.product, n.metric) for n in firsts.values() if n.asin in set(asked)
    ]


@pytest.mark.parametrize(
    ("body", "staged"),
    [
        (b'[{"asin": "B0FAST0001", "price": 12.50}]', '[{"asin": "B0FAST0001", "price": 12.50}]'),
        ('[{"title": "caf\u00e9"}]'.encode(), '[{"title": "caf\u00e9"}]'),
        (b'[{"price": NaN}]', None),
        (b'[{"price": -Infinity}]', None),
        ("[1]".encode("utf-16-le"), None),
        (b'[{"title": "\xff"}]', None),
        (None, None),
    ],
)
def test_the_response_text_is_staged_only_when_postgres_takes_it_as_is(body, staged):
    from functions.product_monitor import repository

    assert repository.as_received(body) == staged
