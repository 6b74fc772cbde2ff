"""snacks domain rules that need no database: the order state machine, the reaction ranking,
snack names and URLs, periods of the statistics. Pure functions, unit-tested directly.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from opsdeck.errors import Conflict, InvalidInput, NotFound

# ----------------------------------------------------------------------- orders

Status = Literal["created", "approved", "ordered", "shipping", "completed", "canceled"]
STATUSES: tuple[Status, ...] = ("created", "approved", "ordered", "shipping", "completed", "canceled")
#: the only legal edges (seed: Order Status Flow); the database trigger holds the same table
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"approved", "canceled"}),
    "approved": frozenset({"ordered", "canceled"}),
    "ordered": frozenset({"shipping"}),
    "shipping": frozenset({"completed"}),
    "completed": frozenset(),
    "canceled": frozenset(),
}
#: transitions that carry the estimated arrival date, and only they
NEEDS_ARRIVAL = frozenset({"ordered", "shipping"})
#: transitions refused while a snack of the order has more hates than likes
GATED = frozenset({("created", "approved"), ("approved", "ordered")})
#: statuses whose snacks cannot be requested in another order (the seed's ``not_delivered``)
NOT_DELIVERED = ("created", "approved", "ordered")


class IllegalTransition(Conflict):
    slug, title = "illegal-transition", "Illegal order status transition"


class DislikedSnacks(Conflict):
    slug, title = "disliked-snacks", "Snacks with more hates than likes"


class OrderNotEditable(Conflict):
    slug, title = "order-not-editable", "Order can no longer be edited"


class SnackAlreadyRequested(Conflict):
    slug, title = "snack-already-requested", "Snack already requested"


class NoSuchPeriod(NotFound):
    """The parameters have the right shape, but the calendar has no such period (2023-02-30)."""

    slug, title = "no-such-period", "No such period"


class SnackListedTwice(Conflict):
    """Two items of one order name the same snack (by uid, or by a name of the same identity)."""

    slug, title = "snack-listed-twice", "Snack listed twice"


def check_transition(current: str, target: str, estimated_arrival: date | None) -> None:
    """Refuse anything but a legal edge; the arrival date exactly on → ordered / → shipping."""
    if target not in TRANSITIONS:
        raise InvalidInput(f"unknown status {target!r}")
    if target not in TRANSITIONS[current]:
        allowed = sorted(TRANSITIONS[current])
        raise IllegalTransition(
            f"an order cannot go from {current} to {target}"
            + (f" (from {current}: {', '.join(allowed)})" if allowed else f" ({current} is final)"),
            current=current,
            target=target,
            allowed=allowed,
        )
    if target in NEEDS_ARRIVAL and estimated_arrival is None:
        raise InvalidInput(f"estimated_arrival is required to move an order to {target}")
    if target not in NEEDS_ARRIVAL and estimated_arrival is not None:
        raise InvalidInput("estimated_arrival is given only when moving an order to ordered or shipping")


# -------------------------------------------------------------------- reactions

REACTIONS = ("like", "hate")


def rank_ratio(likes: int, hates: int) -> float:
    """The list order (seed: like/hate, 7/3 above 60/40): +inf without hates, 1 without reactions."""
    if hates == 0:
        return math.inf if likes > 0 else 1.0
    return likes / hates


def rank_key(likes: int, hates: int, snack_id: int) -> tuple[float, int, int]:
    """Sort key, ascending = list order: ratio high first, then more likes, then older snack."""
    return (-rank_ratio(likes, hates), -likes, snack_id)


# ----------------------------------------------------------------------- snacks

#: ASCII whitespace (the API's patterns speak of ASCII only)
_SPACE = re.compile(r"[ \t\r\n\f\v]+")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def name_key(name: str) -> str:
    """A snack's identity: case- and whitespace-insensitive (the database computes the same)."""
    return _SPACE.sub("", name).lower()


def clean_name(name: str) -> str:
    cleaned = _SPACE.sub(" ", name).strip()
    if not cleaned:
        raise InvalidInput("a snack name cannot be blank")
    return cleaned


def check_web_url(value: str | None, field: str) -> str | None:
    """An http(s) URL with a host and no credentials, or ``None``."""
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise InvalidInput(f"{field} is not a valid URL") from None
    del port
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"{field} must be an http or https URL")
    if not parts.hostname:
        raise InvalidInput(f"{field} has no host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(f"{field} must not carry credentials")
    if any(c == " " or ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{field} contains whitespace or control characters")
    return value


def amount(value: Decimal) -> str:
    return f"{value:.2f}"


# -------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval ``[start, end)`` with its label."""

    kind: str
    label: str
    start: datetime
    end: datetime


def _day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _require(value: int | None, name: str, kind: str) -> int:
    if value is None:
        raise InvalidInput(f"{name} is required for a {kind} period")
    return value


def period(
    *,
    year: int | None = None,
    month: int | None = None,
    day: int | None = None,
    week: int | None = None,
    iso_week: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Period:
    """The period named by one combination of parameters (anything else is 422; a period the
    calendar does not have, such as 2023-02-30 or a range ending before it starts, 404):

    * ``year`` · ``year+month`` · ``year+month+day``;
    * ``date_from+date_to`` — whole days, both inclusive (``2024-01-01``..``2024-01-14``);
    * ``year+iso_week`` — ISO 8601 week (Monday..Sunday, week 1 holds the first Thursday);
    * ``year+month+week`` — the n-th week of a month: days 7(n-1)+1 .. 7n, the 5th week the
      rest of the month (29..28-31; none in a 28-day February).
    """
    if date_from is not None or date_to is not None:
        if (
            date_from is None
            or date_to is None
            or any(v is not None for v in (year, month, day, week, iso_week))
        ):
            raise InvalidInput("a day range takes from and to, and nothing else")
        if date_to < date_from:
            raise NoSuchPeriod(f"the range {date_from}..{date_to} ends before it starts: it has no day")
        return Period("range", f"{date_from}..{date_to}", _day(date_from), _day(date_to) + timedelta(days=1))
    if year is None:
        raise InvalidInput("give year (with month, day, week or iso_week), or from and to")
    if iso_week is not None:
        if any(v is not None for v in (month, day, week)):
            raise InvalidInput("iso_week goes with year only")
        try:
            start = date.fromisocalendar(year, iso_week, 1)
        except ValueError:
            raise NoSuchPeriod(f"{year} has no ISO week {iso_week}") from None
        return Period("iso_week", f"{year}-W{iso_week:02d}", _day(start), _day(start) + timedelta(days=7))
    if month is None:
        if day is not None or week is not None:
            raise InvalidInput("day and week need a month")
        return Period("year", f"{year}", _day(date(year, 1, 1)), _day(date(year + 1, 1, 1)))
    last = calendar.monthrange(year, month)[1]
    if week is not None:
        if day is not None:
            raise InvalidInput("give day or week, not both")
        first = 7 * (week - 1) + 1
        if first > last:
            raise NoSuchPeriod(f"{year}-{month:02d} has no week {week}")
        end_day = last if week == 5 else 7 * week
        return Period(
            "month_week",
            f"{year}-{month:02d} week {week}",
            _day(date(year, month, first)),
            _day(date(year, month, end_day)) + timedelta(days=1),
        )
    if day is not None:
        if day > last:
            raise NoSuchPeriod(f"{year}-{month:02d} has no day {day}")
        start = _day(date(year, month, day))
        return Period("day", f"{year}-{month:02d}-{day:02d}", start, start + timedelta(days=1))
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period("month", f"{year}-{month:02d}", _day(date(year, month, 1)), _day(nxt))
