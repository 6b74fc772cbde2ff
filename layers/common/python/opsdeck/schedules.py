"""EventBridge schedule expressions in AWS syntax: ``cron(…)`` with six fields, and ``rate(n unit)``.

``parse(expression)`` returns a ``Cron`` or a ``Rate``; both answer ``next_after(t)`` (the first
fire time strictly after ``t``, UTC, or ``None`` when the schedule never fires again) and
``longest_gap()`` (the longest wait between two fires, which sizes a "stalled" alarm). The
grammar is the one AWS documents for scheduled rules, and what it rejects is rejected here
too, with the reason, so an expression that works locally deploys:

* fields: minutes hours day-of-month month day-of-week year; all UTC;
* ``,`` lists, ``-`` ranges (low-high, no wrap-around), ``/`` steps (``5/15``, ``*/10``,
  ``10-40/5``), ``*``; months ``JAN``-``DEC`` and days ``SUN``-``SAT`` by name; day-of-week
  1-7 is SUN-SAT;
* exactly one of day-of-month / day-of-week is ``?``;
* day-of-month: ``L`` (last day), ``nW`` (weekday nearest day n, never leaving the month),
  ``LW`` (last weekday);
* day-of-week: ``L`` (the last day of the week, Saturday), ``nL`` (the last day n of the
  month), ``n#k`` (the k-th day n of the month; only one ``#`` expression per field);
* years 1970-2199.

A rate schedule starts when the rule is created and then fires every period: its fire
times are ``anchor + k·period`` (``Rate.next_after(t, anchor)``). Precision is one minute, as
on AWS; cron times fire at second 0.
"""

from __future__ import annotations

import calendar
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}  # Jan→1
MONTH_NAMES = {k.upper(): v for k, v in MONTHS.items()}
DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
MIN_YEAR, MAX_YEAR = 1970, 2199

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_NUMERIC = re.compile(r"[0-9,*/-]+")
_NAMED = re.compile(r"[0-9A-Za-z,*/-]+")


class ScheduleExpressionError(ValueError):
    """The expression is not valid AWS schedule syntax (the message says why)."""


@dataclass(frozen=True)
class Rate:
    """``rate(n unit)``: every ``seconds``, counted from when the rule was created."""

    seconds: int
    expression: str

    def next_after(self, t: datetime, anchor: datetime) -> datetime:
        """The first ``anchor + k·period`` (k ≥ 1) strictly after ``t``."""
        period = timedelta(seconds=self.seconds)
        if t < anchor:
            return anchor + period
        k = int((t - anchor) / period) + 1
        return anchor + k * period

    def longest_gap(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class DaySpec:
    """Which days of a month a cron expression selects (one of its two day fields)."""

    days: frozenset[int] = frozenset()  # plain day-of-month numbers, or day-of-week numbers
    last_day: bool = False  # DOM "L"
    last_weekday: bool = False  # DOM "LW"
    nearest_weekday: int | None = None  # DOM "nW"
    last_of_week_day: int | None = None  # DOW "nL"
    nth_week_day: tuple[int, int] | None = None  # DOW "n#k"


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: DaySpec | None  # None: "?"
    day_of_week: DaySpec | None  # None: "?"
    expression: str

    def days_in(self, year: int, month: int) -> list[int]:
        """The days of ``year``-``month`` this expression fires on, ascending."""
        last = calendar.monthrange(year, month)[1]
        if self.day_of_month is not None:
            return _month_days(self.day_of_month, year, month, last)
        assert self.day_of_week is not None
        return _week_days(self.day_of_week, year, month, last)

    def next_after(self, t: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first fire time strictly after ``t`` (UTC), or None if there is none."""
        t = t.astimezone(UTC)
        start = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in sorted(y for y in self.years if y >= start.year):
            for month in sorted(self.months):
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.days_in(year, month):
                    d = date(year, month, day)
                    if d < start.date():
                        continue
                    for hour in sorted(self.hours):
                        for minute in sorted(self.minutes):
                            candidate = datetime(year, month, day, hour, minute, tzinfo=UTC)
                            if candidate >= start:
                                return candidate
        return None

    def longest_gap(self) -> timedelta | None:
        """The longest wait between two consecutive fires over every year the expression allows
        (1970-2199), or None when it fires fewer than twice.

        Every firing day fires at the same times of day, so the longest wait is either between two
        of those times or from the last time of one firing day to the first time of the next.
        """
        times = sorted(h * 60 + m for h in self.hours for m in self.minutes)  # minutes of the day
        days = [
            date(year, month, day).toordinal()
            for year in sorted(self.years)
            for month in sorted(self.months)
            for day in self.days_in(year, month)
        ]
        if len(days) * len(times) < 2:
            return None
        within_a_day = max((b - a for a, b in itertools.pairwise(times)), default=0)
        day_to_day = max(
            ((b - a) * 1440 - (times[-1] - times[0]) for a, b in itertools.pairwise(days)),
            default=0,
        )
        return timedelta(minutes=max(within_a_day, day_to_day))


def _aws_weekday(d: date) -> int:
    """1=SUN … 7=SAT, as AWS cron numbers days of the week."""
    return (d.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    wd = _aws_weekday(date(year, month, day))
    if wd == 7:  # Saturday → Friday, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if wd == 1:  # Sunday → Monday, unless that leaves the month
        return day + 1 if day < last else day - 2
    return day


def _month_days(spec: DaySpec, year: int, month: int, last: int) -> list[int]:
    days = {d for d in spec.days if d <= last}
    if spec.last_day:
        days.add(last)
    if spec.last_weekday:
        days.add(_nearest_weekday(year, month, last, last))
    if spec.nearest_weekday is not None and spec.nearest_weekday <= last:
        days.add(_nearest_weekday(year, month, spec.nearest_weekday, last))
    return sorted(days)


def _week_days(spec: DaySpec, year: int, month: int, last: int) -> list[int]:
    days = [d for d in range(1, last + 1) if _aws_weekday(date(year, month, d)) in spec.days]
    if spec.last_of_week_day is not None:
        days.append(
            max(
                d
                for d in range(last - 6, last + 1)
                if _aws_weekday(date(year, month, d)) == spec.last_of_week_day
            )
        )
    if spec.nth_week_day is not None:
        weekday, nth = spec.nth_week_day
        matching = [d for d in range(1, last + 1) if _aws_weekday(date(year, month, d)) == weekday]
        if nth <= len(matching):
            days.append(matching[nth - 1])
    return sorted(set(days))


# --------------------------------------------------------------------- parsing


def parse(expression: str) -> Cron | Rate:
    """Parse a ``cron(…)`` or ``rate(…)`` expression; ``ScheduleExpressionError`` says what is wrong."""
    if not isinstance(expression, str):
        raise ScheduleExpressionError("a schedule expression is a string")
    text = expression.strip()
    if text.startswith("rate("):
        return _parse_rate(text)
    m = _CRON.match(text)
    if not m:
        raise ScheduleExpressionError(f"{expression!r} is neither cron(…) nor rate(…)")
    return _parse_cron(m.group(1), text)


def _parse_rate(text: str) -> Rate:
    m = _RATE.match(text)
    if not m:
        raise ScheduleExpressionError(
            f"{text!r}: write rate(<positive integer> minute|minutes|hour|hours|day|days)"
        )
    value, unit = int(m.group(1)), m.group(2)
    if value < 1:
        raise ScheduleExpressionError(f"{text!r}: the value must be a positive integer")
    if (value == 1) != (not unit.endswith("s")):
        raise ScheduleExpressionError(f"{text!r}: use a singular unit for 1 and a plural one otherwise")
    return Rate(value * _UNIT_S[unit.rstrip("s")], text)


def _parse_cron(body: str, text: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"{text!r}: cron expressions have 6 fields, got {len(fields)}")
    minute, hour, dom, month, dow, year = fields
    for name, value, allowed in (
        ("minutes", minute, _NUMERIC),
        ("hours", hour, _NUMERIC),
        ("month", month, _NAMED),
        ("year", year, _NUMERIC),
    ):
        if not allowed.fullmatch(value):
            raise ScheduleExpressionError(f"{text!r}: the {name} field allows only values and , - * /")
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{text!r}: exactly one of day-of-month and day-of-week must be ? (AWS does not combine them)"
        )
    try:
        return Cron(
            minutes=_values(minute, 0, 59, {}, "minutes"),
            hours=_values(hour, 0, 23, {}, "hours"),
            months=_values(month, 1, 12, MONTH_NAMES, "month"),
            years=_values(year, MIN_YEAR, MAX_YEAR, {}, "year"),
            day_of_month=None if dom == "?" else _day_of_month(dom),
            day_of_week=None if dow == "?" else _day_of_week(dow),
            expression=text,
        )
    except ScheduleExpressionError as exc:
        raise ScheduleExpressionError(f"{text!r}: {exc}") from None


def _number(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise ScheduleExpressionError(f"{token!r} is not a valid {field} value")
    value = int(token)
    if not low <= value <= high:
        raise ScheduleExpressionError(f"{field} value {value} is outside {low}-{high}")
    return value


def _values(field_text: str, low: int, high: int, names: dict[str, int], field: str) -> frozenset[int]:
    """A list of ``*``, ``n``, ``a-b``, ``a/s``, ``*/s``, ``a-b/s`` items."""
    out: set[int] = set()
    for item in field_text.split(","):
        if not item:
            raise ScheduleExpressionError(f"empty item in the {field} field")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleExpressionError(
                    f"step {step_text!r} in the {field} field must be a positive integer"
                )
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, low, high, names, field), _number(b, low, high, names, field)
            if start > end:
                raise ScheduleExpressionError(f"range {base!r} in the {field} field runs backwards")
        else:
            start = _number(base, low, high, names, field)
            end = high if step_text else start
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _day_of_month(text: str) -> DaySpec:
    upper = text.upper()
    if upper == "L":
        return DaySpec(last_day=True)
    if upper == "LW":
        return DaySpec(last_weekday=True)
    if upper.endswith("W"):
        day = upper[:-1]
        if not day.isdigit():
            raise ScheduleExpressionError("W takes one day of the month, e.g. 15W (no ranges or lists)")
        return DaySpec(nearest_weekday=_number(day, 1, 31, {}, "day-of-month"))
    if not _NUMERIC.fullmatch(text):
        raise ScheduleExpressionError(f"day-of-month {text!r}: L, LW and nW stand alone")
    return DaySpec(days=_values(text, 1, 31, {}, "day-of-month"))


def _day_of_week(text: str) -> DaySpec:
    upper = text.upper()
    if "#" in upper:
        if "," in upper or upper.count("#") != 1:
            raise ScheduleExpressionError("only one # expression is allowed in the day-of-week field")
        day, _, nth = upper.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleExpressionError(f"{text!r}: the number after # is 1-5")
        return DaySpec(nth_week_day=(_number(day, 1, 7, DAY_NAMES, "day-of-week"), int(nth)))
    if upper == "L":
        return DaySpec(days=frozenset({7}))
    if upper.endswith("L"):
        day = upper[:-1]
        if "," in day or "-" in day or "/" in day:
            raise ScheduleExpressionError("nL takes one day of the week, e.g. 6L (the last Friday)")
        return DaySpec(last_of_week_day=_number(day, 1, 7, DAY_NAMES, "day-of-week"))
    if not _NAMED.fullmatch(text):
        raise ScheduleExpressionError(f"day-of-week {text!r} is not valid")
    return DaySpec(days=_values(text, 1, 7, DAY_NAMES, "day-of-week"))


def next_fire(
    expression: Cron | Rate | str, after: datetime, *, anchor: datetime | None = None
) -> datetime | None:
    """The next fire time of ``expression`` strictly after ``after`` (rate: counted from ``anchor``)."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    if isinstance(parsed, Rate):
        return parsed.next_after(after, anchor or after)
    return parsed.next_after(after)
