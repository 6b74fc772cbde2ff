"""product_monitor domain logic: pure functions, no I/O (unit-tested in ``tests/unit/product_monitor``).

* ``normalise`` — one Apify product item → (product row, metric row), defensively: the shapes
  vary by actor version (``price`` ``{value, currency}`` or a number or ``"$1,299.00"``;
  ``breadCrumbs`` a string ``"A \u203a B"`` or a list; ``inStock`` or an ``availability`` text; ranks
  ``bestsellerRanks`` / ``bestsellersRank`` / ``salesRank``…). What cannot be read is a
  ``Malformed`` item with its reason (the run's error list), never a half row.
* ``shard`` — the planner's batches of 50-100 ASINs.
* ``anomalies`` — price drop / spike, rating drop, BSR jump, out of stock, with thresholds.
* ``recommend`` — the rule-based competitive report and recommendations.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ASIN_PATTERN = r"^[A-Z0-9]{10}$"
_ASIN = re.compile(ASIN_PATTERN)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "C$": "CAD", "A$": "AUD"}
_OUT_OF_STOCK = ("out of stock", "currently unavailable", "unavailable", "sold out", "temporarily out")
_CRUMB_SPLIT = re.compile(r"\s*(?:\u203a|>|/|\|)\s*")
MAX_TEXT = 2000
CENT = Decimal("0.0001")


class Malformed(ValueError):
    """An upstream item that cannot be normalised (the reason is short and safe to show)."""


@dataclass(frozen=True, slots=True)
class Normalised:
    asin: str
    product: dict[str, Any]
    metric: dict[str, Any]


def valid_asin(value: Any) -> bool:
    return isinstance(value, str) and _ASIN.match(value) is not None


def _text(value: Any) -> str | None:
    if type(value) is str:
        if "  " in value or "\n" in value or "\t" in value or "\r" in value:
            value = " ".join(value.split())
        else:
            value = value.strip()
        return value[:MAX_TEXT] or None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value)


def _decimal(value: Any, what: str) -> Decimal | None:
    """A number from a number or a price text (``"$1,299.99"``); None when absent."""
    kind = type(value)
    if kind is float:  # the common cases first (same results as below)
        if not math.isfinite(value):
            raise Malformed(f"{what} is not finite")
        number = Decimal(repr(value))
        if number < 0:
            raise Malformed(f"{what} is negative")
        return number
    if kind is int:
        if value < 0:
            raise Malformed(f"{what} is negative")
        return Decimal(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Malformed(f"{what} is a boolean")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise Malformed(f"{what} is not finite")
        number = Decimal(str(value))
    elif isinstance(value, str):
        found = _NUMBER.search(value)
        if found is None:
            raise Malformed(f"{what} is not a number: {value[:40]!r}")
        try:
            number = Decimal(found.group().replace(",", ""))
        except InvalidOperation:
            raise Malformed(f"{what} is not a number: {value[:40]!r}") from None
    else:
        raise Malformed(f"{what} has an unexpected shape ({type(value).__name__})")
    if number < 0:
        raise Malformed(f"{what} is negative")
    return number


def _price(value: Any, what: str) -> tuple[Decimal | None, str | None]:
    """``{value, currency}`` | number | text → (amount, currency)."""
    currency = None
    if isinstance(value, dict):
        currency = _text(value.get("currency")) or None
        raw = value.get("value", value.get("amount"))
        amount = _decimal(raw, what)
    else:
        amount = _decimal(value, what)
        if isinstance(value, str):
            for symbol, code in sorted(_CURRENCY_SYMBOLS.items(), key=lambda kv: -len(kv[0])):
                if symbol in value:
                    currency = code
                    break
    if currency is not None:
        currency = _CURRENCY_SYMBOLS.get(currency, currency).upper()[:3]
    if amount is not None:
        if amount > Decimal("100000000"):
            raise Malformed(f"{what} is implausibly large")
        amount = amount.quantize(CENT)
    return amount, currency


def _int(value: Any, what: str) -> int | None:
    if type(value) is int and 0 <= value <= 2_000_000_000:  # the common case (as below)
        return value
    number = _decimal(value, what)
    if number is None:
        return None
    if number > 2_000_000_000:
        raise Malformed(f"{what} is implausibly large")
    return int(number)


def _rating(value: Any) -> Decimal | None:
    if isinstance(value, str) and "out of" in value:  # "4.5 out of 5 stars"
        value = value.split("out of")[0]
    number = _decimal(value, "stars")
    if number is None:
        return None
    if number > 5:
        raise Malformed("stars is above 5")
    return number.quantize(Decimal("0.01"))


def _breadcrumbs(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = _CRUMB_SPLIT.split(value)
    elif isinstance(value, list):
        parts = []
        for p in value:
            if isinstance(p, dict):
                p = p.get("name") or p.get("title")
            t = _text(p)
            if t:
                parts.append(t)
    else:
        return None
    crumbs = [t for p in parts if (t := _text(p))]
    return crumbs[:20] or None


def _rank(item: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The best (lowest) bestseller rank and its category, from whichever field the actor uses."""
    ranks = item.get("bestsellerRanks")
    if ranks is None:
        ranks = item.get("bestsellersRank", item.get("salesRank"))
    if ranks is None:
        return None, None
    if isinstance(ranks, int | float | str):
        return _int(ranks, "bestsellerRanks"), None
    if isinstance(ranks, dict):
        ranks = [ranks]
    if not isinstance(ranks, list):
        raise Malformed("bestsellerRanks has an unexpected shape")
    best: tuple[int, Any] | None = None
    for entry in ranks:
        if isinstance(entry, dict):
            rank = _int(entry.get("rank"), "bestsellerRanks.rank")
            category: Any = entry  # read (never raises) only for the best one
        else:
            rank, category = _int(entry, "bestsellerRanks"), None
        if rank is not None and rank > 0 and (best is None or rank < best[0]):
            best = (rank, category)
    if best is None:
        return None, None
    rank, entry = best
    return rank, (_text(entry.get("category") or entry.get("categoryName")) if entry is not None else None)


def _in_stock(item: Mapping[str, Any]) -> bool | None:
    value = item.get("inStock")
    if isinstance(value, bool):
        return value
    text = item.get("availability", value)
    if isinstance(text, dict):
        text = text.get("text") or text.get("status")
    if isinstance(text, str):
        low = text.lower()
        if any(word in low for word in _OUT_OF_STOCK):
            return False
        if "in stock" in low or "available" in low or "left in stock" in low:
            return True
    return None


def normalise(item: Any, captured_at: datetime) -> Normalised:
    """One Apify product item → rows of ``products`` and ``product_metrics_daily``."""
    if not isinstance(item, dict):
        raise Malformed(f"item is a {type(item).__name__}, not an object")
    if item.get("error") or item.get("errorDescription"):
        raise Malformed(
            f"the actor reported an error: {str(item.get('error') or item.get('errorDescription'))[:80]}"
        )
    asin = item.get("asin") or item.get("ASIN") or item.get("originalAsin")
    if isinstance(asin, str):
        asin = asin.strip().upper()
    if not valid_asin(asin):
        raise Malformed("missing or invalid asin")
    price, currency = _price(item.get("price"), "price")
    list_price, list_currency = _price(item.get("listPrice"), "listPrice")
    bsr, bsr_category = _rank(item)
    crumbs = _breadcrumbs(item.get("breadCrumbs", item.get("breadcrumbs")))
    images = item.get("images") or item.get("imageUrls")
    image = item.get("thumbnailImage") or item.get("mainImage")
    if image is None and isinstance(images, list) and images:
        image = images[0] if isinstance(images[0], str) else None
    reviews = _int(item.get("reviewsCount", item.get("reviewCount")), "reviewsCount")
    rating = _rating(item.get("stars", item.get("rating")))
    currency = currency or list_currency
    product = {
        "asin": asin,
        "title": _text(item.get("title")),
        "brand": _text(item.get("brand") or item.get("manufacturer")),
        "category": crumbs[-1] if crumbs else None,
        "breadcrumbs": crumbs,
        "image_url": _text(image) if isinstance(image, str) and image.startswith("https://") else None,
        "url": _text(item.get("url")) if str(item.get("url", "")).startswith("https://") else None,
        "currency": currency,
        "updated_at": captured_at,
    }
    metric = {
        "asin": asin,
        "date": captured_at.date(),
        "price": price,
        "currency": currency,
        "list_price": list_price,
        "rating": rating,
        "reviews_count": reviews,
        "bsr": bsr,
        "bsr_category": bsr_category,
        "in_stock": _in_stock(item),
        "captured_at": captured_at,
    }
    return Normalised(asin, product, metric)


def item_asin(item: Any) -> str | None:
    """The ASIN an item claims, if it is a readable one (for the raw row and the error list)."""
    if isinstance(item, dict):
        a = item.get("asin") or item.get("ASIN")
        if isinstance(a, str) and valid_asin(a.strip().upper()):
            return a.strip().upper()
    return None


# ------------------------------------------------------------------------ planner


def shard(asins: Sequence[str], batch_size: int = 100, minimum: int = 50) -> list[list[str]]:
    """ASINs in batches of at most ``batch_size``, as even as possible, none below ``minimum``
    unless there are fewer than ``minimum`` ASINs in all (then one batch)."""
    if not 1 <= minimum <= batch_size:
        raise ValueError("need 1 <= minimum <= batch_size")
    unique = list(dict.fromkeys(asins))
    n = len(unique)
    if n == 0:
        return []
    count = math.ceil(n / batch_size)
    base, extra = divmod(n, count)
    out, start = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append(unique[start : start + size])
        start += size
    return out


def health_sample(asins: Sequence[str], fraction: float, batch_size: int, salt: str) -> list[str]:
    """A deterministic-per-salt sample (one batch at least) of ``asins`` for a health run."""
    if not asins:
        return []
    want = max(min(len(asins), batch_size), math.ceil(len(asins) * fraction))
    want = min(want, len(asins))
    ranked = sorted(asins, key=lambda a: hashlib.blake2b(f"{salt}:{a}".encode(), digest_size=8).digest())
    return sorted(ranked[:want])


# ---------------------------------------------------------------------- anomalies


@dataclass(frozen=True, slots=True)
class Thresholds:
    price_drop_pct: Decimal = Decimal("10")
    price_spike_pct: Decimal = Decimal("15")
    rating_drop: Decimal = Decimal("0.2")
    bsr_jump_pct: Decimal = Decimal("50")


def _pct(old: Decimal, new: Decimal) -> Decimal:
    return ((new - old) / old * 100).quantize(Decimal("0.01"))


def anomalies(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], t: Thresholds
) -> list[dict[str, Any]]:
    """Alerts for one ASIN: today's metric row against the latest earlier one."""
    out: list[dict[str, Any]] = []
    asin, day = current["asin"], current["date"]

    def alert(kind: str, severity: str, message: str, **details: Any) -> None:
        out.append(
            {
                "asin": asin,
                "kind": kind,
                "severity": severity,
                "observed_date": day,
                "message": message,
                "details": {k: _plain(v) for k, v in details.items()},
            }
        )

    was_in_stock = previous.get("in_stock") if previous else None
    if current.get("in_stock") is False and was_in_stock is not False:
        alert("out_of_stock", "critical", f"{asin} is out of stock", previous_in_stock=was_in_stock)
    if previous is None:
        return out
    old_p, new_p = previous.get("price"), current.get("price")
    if old_p and new_p is not None and old_p > 0:
        change = _pct(old_p, new_p)
        if change <= -t.price_drop_pct:
            alert(
                "price_drop",
                "warning",
                f"{asin} price fell {-change}%",
                old=old_p,
                new=new_p,
                change_pct=change,
            )
        elif change >= t.price_spike_pct:
            alert(
                "price_spike",
                "warning",
                f"{asin} price rose {change}%",
                old=old_p,
                new=new_p,
                change_pct=change,
            )
    old_r, new_r = previous.get("rating"), current.get("rating")
    if old_r is not None and new_r is not None and old_r - new_r >= t.rating_drop:
        alert("rating_drop", "warning", f"{asin} rating fell {old_r} → {new_r}", old=old_r, new=new_r)
    old_b, new_b = previous.get("bsr"), current.get("bsr")
    if old_b and new_b and old_b > 0:
        change = _pct(Decimal(old_b), Decimal(new_b))
        if change >= t.bsr_jump_pct:
            alert(
                "bsr_jump",
                "info",
                f"{asin} best-seller rank worsened {old_b} → {new_b}",
                old=old_b,
                new=new_b,
                change_pct=change,
            )
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, date | datetime):
        return v.isoformat()
    return v


# ------------------------------------------------------------- recommendations


def _median(values: Iterable[Decimal]) -> Decimal | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def recommend(
    own: Mapping[str, Any],
    competitors: Sequence[Mapping[str, Any]],
    review_summary: Mapping[str, Any] | None = None,
    *,
    low_share: Decimal = Decimal("0.2"),
    min_read: int = 5,
) -> tuple[dict, list[dict]]:
    """The competitive report and the rule-based recommendations for one ASIN.

    ``own`` and each competitor are ``{asin, title, price, rating, reviews_count, bsr, in_stock}``
    (latest metrics; any may be None); ``review_summary`` the ASIN's latest review summary (or None).
    Deterministic: the same inputs give the same content.
    """
    prices = [c["price"] for c in competitors if c.get("price") is not None]
    ratings = [c["rating"] for c in competitors if c.get("rating") is not None]
    reviews = [Decimal(c["reviews_count"]) for c in competitors if c.get("reviews_count") is not None]
    ranks = [Decimal(c["bsr"]) for c in competitors if c.get("bsr")]
    med_price, med_rating = _median(prices), _median(ratings)
    med_reviews, med_rank = _median(reviews), _median(ranks)
    price = own.get("price")
    position = None
    if price is not None and prices:
        position = sum(1 for p in prices if p < price) + 1  # 1 = cheapest
    report = {
        "asin": own["asin"],
        "competitors": len(competitors),
        "own": {k: _plain(own.get(k)) for k in ("price", "rating", "reviews_count", "bsr", "in_stock")},
        "market": {
            "median_price": _plain(med_price),
            "min_price": _plain(min(prices)) if prices else None,
            "max_price": _plain(max(prices)) if prices else None,
            "median_rating": _plain(med_rating),
            "median_reviews": _plain(med_reviews),
            "median_bsr": _plain(med_rank),
        },
        "price_position": position,
        "price_gap_pct": _plain(_pct(med_price, price)) if price is not None and med_price else None,
        "reviews": _review_digest(review_summary),
        "rows": [
            {
                k: _plain(c.get(k))
                for k in ("asin", "title", "price", "rating", "reviews_count", "bsr", "in_stock")
            }
            for c in sorted(competitors, key=lambda c: c["asin"])
        ],
    }
    items: list[dict[str, Any]] = []

    def rec(code: str, priority: str, text: str) -> None:
        items.append({"code": code, "priority": priority, "text": text})

    if own.get("in_stock") is False:
        rec("restock", "high", "The listing is out of stock: restock before optimising anything else.")
    if price is not None and med_price:
        gap = _pct(med_price, price)
        if gap >= 10:
            rec(
                "price_above_market",
                "high",
                f"Price is {gap}% above the competitors' median ({_plain(med_price)}).",
            )
        elif gap <= -15:
            rec("price_below_market", "medium", f"Price is {-gap}% below the median: room to raise it.")
    rating = own.get("rating")
    if rating is not None and med_rating is not None and rating < med_rating - Decimal("0.2"):
        rec(
            "improve_rating",
            "medium",
            f"Rating {rating} trails the median {_plain(med_rating)}: address review themes.",
        )
    count = own.get("reviews_count")
    if count is not None and med_reviews is not None and Decimal(count) < med_reviews / 2:
        rec(
            "grow_reviews",
            "low",
            "Fewer than half the median review count: consider Vine / follow-up emails.",
        )
    share = low_rating_share(review_summary)
    if share is not None and review_summary["reviews_read"] >= min_read and share >= low_share:
        negative = review_summary.get("negative") or []
        example = next((n.get("title") for n in negative if n.get("title")), None)
        rec(
            "address_review_themes",
            "medium",
            f"{(share * 100).quantize(Decimal('1'))}% of the {review_summary['reviews_read']} latest reviews "
            "read "
            "are 1-2 stars: address their themes"
            + (f" (e.g. \u201c{example[:80]}\u201d)." if example else "."),
        )
    bsr = own.get("bsr")
    if bsr and med_rank and Decimal(bsr) > med_rank * 2:
        rec("improve_rank", "medium", "Best-seller rank is over twice the median: check ads and keywords.")
    if not competitors:
        rec("add_competitors", "low", "No competitors linked: link some to get a competitive report.")
    return report, items


def _review_digest(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    return {
        "date": _plain(summary.get("date")),
        "reviews_read": summary["reviews_read"],
        "average_rating": _plain(summary.get("average_rating")),
        "low_rating_share": _plain(low_rating_share(summary)),
        "verified_share": _plain(summary.get("verified_share")),
    }


def content_hash(report: Any, items: Any) -> str:
    payload = json.dumps({"r": report, "i": items}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


# ------------------------------------------------------------------------- reviews

_MONTHS = {
    m: i
    for i, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        1,
    )
    for m in (name, name[:3])
}
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2}) ([A-Za-z]{3,9})\.? (\d{4})")
SNIPPETS = 3
SNIPPET_TEXT = 280


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs more per review
class Review:
    asin: str
    review_id: str | None
    rating: int
    date: date | None
    verified: bool | None
    item: Mapping[str, Any]  # the raw item, read again only for the few snippets kept


def review_date(value: Any) -> date | None:
    """``2024-03-03``, an ISO timestamp, ``Reviewed in the United States on March 3, 2024`` or
    ``3 March 2024`` → the day; anything else → None (a review without a date is still counted)."""
    if type(value) is not str:
        return None
    try:
        if len(value) >= 10 and value[4] == "-" and value[7] == "-":  # ISO, the common case
            return date.fromisoformat(value[:10])
        if m := _ISO_DAY.match(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _MONTH_DAY_YEAR.search(value):
            month = _MONTHS.get(m[1].lower())
            return date(int(m[3]), month, int(m[2])) if month else None
        if m := _DAY_MONTH_YEAR.search(value):
            month = _MONTHS.get(m[2].lower())
            return date(int(m[3]), month, int(m[1])) if month else None
    except ValueError:  # February 30th
        return None
    return None


def _review_rating(value: Any) -> int:
    if type(value) is int and 1 <= value <= 5:  # the common case, first
        return value
    if isinstance(value, bool) or value is None:
        raise Malformed("review rating missing")
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):  # "4.0 out of 5 stars", "5"
        found = _NUMBER.search(value)
        if found is None:
            raise Malformed(f"review rating is not a number: {value[:40]!r}")
        number = float(found.group().replace(",", ""))
    elif isinstance(value, int):
        number = float(value)
    else:
        raise Malformed(f"review rating has an unexpected shape ({type(value).__name__})")
    if not (math.isfinite(number) and 1 <= number <= 5):
        raise Malformed("review rating is outside 1-5")
    return int(number + 0.5)


def _verified(item: Mapping[str, Any]) -> bool | None:
    value = item.get("isVerified", item.get("verified", item.get("verifiedPurchase")))
    if type(value) is bool:
        return value
    if isinstance(value, str):
        low = value.lower()
        if "verified" in low or low in ("true", "yes"):
            return "not" not in low and "unverified" not in low
        if low in ("false", "no", ""):
            return False
    return None


def normalise_review(item: Any) -> Review:
    """One item of an Apify reviews actor (one review) → ``Review``; ``Malformed`` otherwise.

    Shapes seen: ``asin`` / ``productAsin`` / ``originalAsin``; ``ratingScore`` (number) or
    ``rating`` (number or ``"4.0 out of 5 stars"``); ``reviewTitle`` / ``title``;
    ``reviewDescription`` / ``text`` / ``body``; ``date`` (ISO or Amazon's "Reviewed in … on
    March 3, 2024"); ``isVerified`` / ``verified`` (bool or "Verified Purchase"); ``variant``.
    """
    if type(item) is not dict:
        raise Malformed(f"review item is a {type(item).__name__}, not an object")
    if "error" in item or "errorDescription" in item:
        raise Malformed(
            f"the actor reported an error: {str(item.get('error') or item.get('errorDescription'))[:80]}"
        )
    asin = item.get("asin") or item.get("productAsin") or item.get("originalAsin")
    if (type(asin) is not str or _ASIN.match(asin) is None) and (
        not isinstance(asin, str) or not valid_asin(asin := asin.strip().upper())
    ):
        raise Malformed("missing or invalid asin")
    rating = item.get("ratingScore")
    rating = _review_rating(item.get("rating", item.get("stars")) if rating is None else rating)
    review_id = item.get("reviewId", item.get("id"))
    return Review(
        asin,
        review_id if type(review_id) is str and review_id else None,
        rating,
        review_date(item.get("date", item.get("reviewDate"))),
        _verified(item),
        item,
    )


def review_asin(item: Any) -> str | None:
    """The ASIN a review item claims, if readable (for the raw row and the error list)."""
    if isinstance(item, dict):
        a = item.get("asin") or item.get("productAsin") or item.get("originalAsin")
        if isinstance(a, str) and valid_asin(a.strip().upper()):
            return a.strip().upper()
    return None


#: what a summary needs of one readable review: (rating, date, verified, raw item)
ReviewFacts = tuple[int, date | None, bool | None, Mapping[str, Any]]


def _snippet(r: ReviewFacts) -> dict[str, Any]:
    rating, day, verified, item = r
    body = _text(item.get("reviewDescription", item.get("text", item.get("body"))))
    return {
        "rating": rating,
        "title": _text(item.get("reviewTitle", item.get("title"))),
        "text": body[:SNIPPET_TEXT] if body else None,
        "date": day,
        "verified": verified,
        "variant": _text(item.get("variant")),
    }


def _newest_first(r: ReviewFacts) -> date:
    return r[1] or date.min


def _rating_of(r: ReviewFacts) -> int:
    return r[0]


def _negated_rating(r: ReviewFacts) -> int:
    return -r[0]


def summarise_reviews(asin: str, reviews: Sequence[Review], captured_at: datetime) -> dict[str, Any]:
    """The reviews read for one ASIN → its ``review_summaries`` row (``reviews`` not empty)."""
    return summarise_facts(asin, [(r.rating, r.date, r.verified, r.item) for r in reviews], captured_at)


def summarise_facts(asin: str, reviews: Sequence[ReviewFacts], captured_at: datetime) -> dict[str, Any]:
    """``summarise_reviews`` over ``(rating, date, verified, item)`` tuples (the ingest's fast path
    builds no ``Review`` per review)."""
    histogram = [0, 0, 0, 0, 0]
    verified = known = 0
    latest: date | None = None
    negative: list[ReviewFacts] = []
    positive: list[ReviewFacts] = []
    for r in reviews:
        rating, day, is_verified, _ = r
        histogram[rating - 1] += 1
        if is_verified is not None:
            known += 1
            verified += is_verified
        if day is not None and (latest is None or day > latest):
            latest = day
        if rating <= 2:
            negative.append(r)
        elif rating >= 4:
            positive.append(r)
    count = len(reviews)
    total = sum(i * n for i, n in enumerate(histogram, 1))
    # most recent first (undated last), then the lowest / highest rating (both sorts stable)
    negative.sort(key=_newest_first, reverse=True)
    negative.sort(key=_rating_of)
    positive.sort(key=_newest_first, reverse=True)
    positive.sort(key=_negated_rating)
    return {
        "asin": asin,
        "date": captured_at.date(),
        "reviews_read": count,
        "average_rating": (Decimal(total) / count).quantize(Decimal("0.01")),
        "histogram": histogram,
        "verified_share": (Decimal(verified) / known).quantize(Decimal("0.0001")) if known else None,
        "latest_review_date": latest,
        "negative": [_snippet(r) for r in negative[:SNIPPETS]],
        "positive": [_snippet(r) for r in positive[:SNIPPETS]],
        "captured_at": captured_at,
    }


def low_rating_share(summary: Mapping[str, Any] | None) -> Decimal | None:
    """Share of 1-2 star reviews among those read (None without a summary)."""
    if not summary or not summary.get("reviews_read"):
        return None
    histogram = summary["histogram"]
    return (Decimal(histogram[0] + histogram[1]) / summary["reviews_read"]).quantize(Decimal("0.0001"))
