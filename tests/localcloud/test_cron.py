"""AWS schedule expressions: the examples of the EventBridge documentation and the edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from localcloud.schedules import Cron, Rate, ScheduleExpressionError, next_fire, parse

# Monday 2026-01-05 10:07:30 UTC
T = datetime(2026, 1, 5, 10, 7, 30, tzinfo=UTC)


def fires(expression: str, after: datetime = T, n: int = 4, anchor: datetime | None = None) -> list[str]:
    out, current, parsed = [], after, parse(expression)
    for _ in range(n):
        current = next_fire(parsed, current, anchor=anchor or after)
        if current is None:
            break
        out.append(current.strftime("%a %Y-%m-%d %H:%M"))
    return out


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # the examples of the EventBridge user guide ("Cron expressions reference")
        ("cron(0 10 * * ? *)", ["Tue 2026-01-06 10:00", "Wed 2026-01-07 10:00", "Thu 2026-01-08 10:00"]),
        ("cron(15 12 * * ? *)", ["Mon 2026-01-05 12:15", "Tue 2026-01-06 12:15", "Wed 2026-01-07 12:15"]),
        (
            "cron(0 18 ? * MON-FRI *)",
            ["Mon 2026-01-05 18:00", "Tue 2026-01-06 18:00", "Wed 2026-01-07 18:00"],
        ),
        ("cron(0 8 1 * ? *)", ["Sun 2026-02-01 08:00", "Sun 2026-03-01 08:00", "Wed 2026-04-01 08:00"]),
        ("cron(0/15 * * * ? *)", ["Mon 2026-01-05 10:15", "Mon 2026-01-05 10:30", "Mon 2026-01-05 10:45"]),
        (
            "cron(0/10 * ? * MON-FRI *)",
            ["Mon 2026-01-05 10:10", "Mon 2026-01-05 10:20", "Mon 2026-01-05 10:30"],
        ),
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            ["Mon 2026-01-05 10:10", "Mon 2026-01-05 10:15", "Mon 2026-01-05 10:20"],
        ),
        ("cron(0 9 ? * 2#1 *)", ["Mon 2026-02-02 09:00", "Mon 2026-03-02 09:00", "Mon 2026-04-06 09:00"]),
        # the documentation's wildcard examples: 1/10 minutes, 3#2 = second Tuesday
        ("cron(1/10 * * * ? *)", ["Mon 2026-01-05 10:11", "Mon 2026-01-05 10:21", "Mon 2026-01-05 10:31"]),
        ("cron(0 12 ? * 3#2 *)", ["Tue 2026-01-13 12:00", "Tue 2026-02-10 12:00", "Tue 2026-03-10 12:00"]),
    ],
)
def test_documented_examples(expression, expected):
    assert fires(expression, n=3) == expected


def test_last_day_of_month_handles_february_and_leap_years():
    assert fires("cron(0 0 L * ? *)", datetime(2027, 12, 31, 1, tzinfo=UTC), n=3) == [
        "Mon 2028-01-31 00:00",
        "Tue 2028-02-29 00:00",
        "Fri 2028-03-31 00:00",
    ]
    assert fires("cron(0 0 L FEB ? *)", T, n=2) == ["Sat 2026-02-28 00:00", "Sun 2027-02-28 00:00"]


def test_nearest_weekday_never_leaves_the_month():
    # 2026-08-01 is a Saturday: 1W is Monday the 3rd, not Friday July 31st
    assert fires("cron(0 9 1W AUG ? 2026)", T, n=2) == ["Mon 2026-08-03 09:00"]
    # 2026-05-31 is a Sunday: 31W is Friday the 29th, not Monday June 1st
    assert fires("cron(0 9 31W MAY ? 2026)", T, n=1) == ["Fri 2026-05-29 09:00"]
    # 2026-02-15 is a Sunday → Monday 16th; 2026-03-15 is a Sunday → Monday 16th
    assert fires("cron(0 9 15W * ? *)", T, n=3) == [
        "Thu 2026-01-15 09:00",
        "Mon 2026-02-16 09:00",
        "Mon 2026-03-16 09:00",
    ]
    # a month without a 31st has no 31W
    assert fires("cron(0 9 31W * ? 2026)", T, n=3) == [
        "Fri 2026-01-30 09:00",
        "Tue 2026-03-31 09:00",
        "Fri 2026-05-29 09:00",
    ]


def test_last_weekday_of_month():
    # Jan 2026 ends on Saturday → Friday 30th; May 2026 ends on Sunday → Friday 29th
    assert fires("cron(0 17 LW * ? *)", T, n=5) == [
        "Fri 2026-01-30 17:00",
        "Fri 2026-02-27 17:00",
        "Tue 2026-03-31 17:00",
        "Thu 2026-04-30 17:00",
        "Fri 2026-05-29 17:00",
    ]


def test_last_given_weekday_and_nth_weekday():
    assert fires("cron(0 10 ? * 6L *)", T, n=3) == [
        "Fri 2026-01-30 10:00",
        "Fri 2026-02-27 10:00",
        "Fri 2026-03-27 10:00",
    ]
    # L alone in day-of-week is the last day of the week: Saturday
    assert fires("cron(0 10 ? * L *)", T, n=2) == ["Sat 2026-01-10 10:00", "Sat 2026-01-17 10:00"]
    # the fifth Friday only exists in some months
    assert fires("cron(0 10 ? * FRI#5 2026)", T, n=4) == [
        "Fri 2026-01-30 10:00",
        "Fri 2026-05-29 10:00",
        "Fri 2026-07-31 10:00",
        "Fri 2026-10-30 10:00",
    ]


def test_names_lists_ranges_steps_and_years():
    assert fires("cron(30 6 ? JAN,JUL SUN *)", T, n=3) == [
        "Sun 2026-01-11 06:30",
        "Sun 2026-01-18 06:30",
        "Sun 2026-01-25 06:30",
    ]
    assert fires("cron(0 0 1 JAN-MAR/2 ? 2027-2028)", T, n=5) == [
        "Fri 2027-01-01 00:00",
        "Mon 2027-03-01 00:00",
        "Sat 2028-01-01 00:00",
        "Wed 2028-03-01 00:00",
    ]
    assert fires("cron(5,25,45 */6 * * ? *)", T, n=4) == [
        "Mon 2026-01-05 12:05",
        "Mon 2026-01-05 12:25",
        "Mon 2026-01-05 12:45",
        "Mon 2026-01-05 18:05",
    ]
    assert fires("cron(0 0 ? * sat,SUN *)", T, n=2) == ["Sat 2026-01-10 00:00", "Sun 2026-01-11 00:00"]


def test_a_schedule_in_the_past_never_fires_again():
    assert fires("cron(0 0 1 1 ? 2020)") == []
    assert next_fire("cron(0 0 29 FEB ? 2027)", T) is None


def test_fire_times_are_strictly_after_and_at_second_zero():
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert next_fire("cron(0 10 * * ? *)", at) == datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    assert next_fire("cron(* * * * ? *)", T) == datetime(2026, 1, 5, 10, 8, tzinfo=UTC)


def test_rate_counts_from_its_anchor():
    anchor = datetime(2026, 1, 5, 10, 0, 20, tzinfo=UTC)
    assert fires("rate(5 minutes)", T, n=2, anchor=anchor) == ["Mon 2026-01-05 10:10", "Mon 2026-01-05 10:15"]
    assert next_fire("rate(1 day)", anchor, anchor=anchor) == datetime(2026, 1, 6, 10, 0, 20, tzinfo=UTC)
    assert next_fire("rate(2 hours)", datetime(2026, 1, 1, tzinfo=UTC), anchor=anchor) == datetime(
        2026, 1, 5, 12, 0, 20, tzinfo=UTC
    )
    assert parse("rate(1 minute)") == Rate(60, "rate(1 minute)")
    assert isinstance(parse("cron(0 0 * * ? *)"), Cron)


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("rate(10 minutes)", timedelta(minutes=10)),
        ("cron(* * * * ? *)", timedelta(minutes=1)),
        ("cron(0 3 * * ? *)", timedelta(days=1)),
        ("cron(15 2 ? * MON-FRI *)", timedelta(days=3)),  # Friday to Monday
        ("cron(0/5 8-17 ? * MON-FRI *)", timedelta(days=2, hours=14, minutes=5)),  # Fri 17:55 → Mon 08:00
        ("cron(0 * 1-30 * ? *)", timedelta(hours=25)),  # the 31st is skipped: 30th 23:00 → 1st 00:00
        ("cron(0 0 L * ? *)", timedelta(days=31)),
        ("cron(0 12 1 1 ? 2027)", None),  # fires once
    ],
)
def test_longest_gap_between_two_fires(expression, gap):
    """What a stalled alarm must wait for (infra_cdk.schedules.stalled_alarm_minutes)."""
    assert parse(expression).longest_gap() == gap


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0/30 8-17 ? * MON-FRI 2027)",
        "cron(10,50 */7 ? * 2#2 2027-2028)",
        "cron(0 6 LW FEB-APR ? 2028)",
        "cron(0 6 15W * ? 2028)",
    ],
)
def test_longest_gap_is_the_longest_wait_between_the_fire_times(expression):
    parsed, previous, longest = parse(expression), None, timedelta(0)
    current = next_fire(parsed, datetime(2026, 12, 31, tzinfo=UTC))
    while current is not None:
        if previous is not None:
            longest = max(longest, current - previous)
        previous, current = current, next_fire(parsed, current)
    assert parsed.longest_gap() == longest > timedelta(0)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 10 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 10 ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 10 * * ?)", "6 fields"),
        ("cron(60 10 * * ? *)", "minutes value 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours value 24 is outside 0-23"),
        ("cron(0 0 0 * ? *)", "day-of-month value 0 is outside 1-31"),
        ("cron(0 0 ? 13 MON *)", "month value 13 is outside 1-12"),
        ("cron(0 0 ? * 8 *)", "day-of-week value 8 is outside 1-7"),
        ("cron(0 0 1 * ? 1969)", "year value 1969 is outside 1970-2199"),
        ("cron(? 0 1 * ? *)", "minutes field allows only"),
        ("cron(0 L 1 * ? *)", "hours field allows only"),
        ("cron(0 0 ? * 3#1,6#3 *)", "only one # expression"),
        ("cron(0 0 ? * 3#6 *)", "the number after # is 1-5"),
        ("cron(0 0 1-5W * ? *)", "W takes one day"),
        ("cron(0 0 10-2 * ? *)", "runs backwards"),
        ("cron(0 0 1 FOO ? *)", "'FOO' is not a valid month value"),
        ("cron(0/0 0 1 * ? *)", "must be a positive integer"),
        ("rate(1 minutes)", "singular unit for 1"),
        ("rate(5 minute)", "singular unit for 1"),
        ("rate(0 minutes)", "positive integer"),
        ("rate(5 seconds)", "rate(<positive integer>"),
        ("every 5 minutes", "neither cron"),
    ],
)
def test_invalid_expressions_say_why(expression, reason):
    with pytest.raises(ScheduleExpressionError) as error:
        parse(expression)
    assert reason in str(error.value)
