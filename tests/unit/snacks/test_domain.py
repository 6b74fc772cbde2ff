"""snacks domain rules without a database; sample events equal their builders; light imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date

import pytest

from functions.snacks import domain
from functions.snacks.demo import sample_events
from opsdeck.errors import InvalidInput
from tests.support import EVENTS, ROOT


def test_ratio_rank_follows_the_seed():
    assert domain.rank_ratio(7, 3) > domain.rank_ratio(60, 40)
    assert domain.rank_ratio(1, 0) == math.inf and domain.rank_ratio(0, 0) == 1.0
    keys = sorted(
        [(60, 40, 1), (7, 3, 2), (0, 0, 3), (0, 2, 4), (5, 0, 5), (9, 0, 6)],
        key=lambda t: domain.rank_key(*t),
    )
    assert [t[2] for t in keys] == [6, 5, 2, 1, 3, 4]


def test_name_identity():
    assert domain.name_key(" Choco  Pie ") == domain.name_key("chocopie") == "chocopie"
    assert domain.clean_name("  Choco   Pie ") == "Choco Pie"


@pytest.mark.parametrize(
    "url", ["ftp://x.com", "https://u:p@x.com", "https://u@x.com", "http:///x", "https://x.com/a b"]
)
def test_bad_urls(url):
    with pytest.raises(InvalidInput):
        domain.check_web_url(url, "purchase_url")


def test_good_url():
    assert (
        domain.check_web_url("HTTPS://shop.example.com:8443/a?b=1", "u")
        == "HTTPS://shop.example.com:8443/a?b=1"
    )


@pytest.mark.parametrize(
    ("kwargs", "start", "end"),
    [
        ({"year": 2024, "month": 1, "week": 1}, "2024-01-01", "2024-01-08"),
        ({"year": 2024, "month": 1, "week": 5}, "2024-01-29", "2024-02-01"),
        ({"year": 2024, "month": 2, "week": 5}, "2024-02-29", "2024-03-01"),
        ({"year": 2023, "month": 3}, "2023-03-01", "2023-04-01"),
        ({"year": 2023, "month": 12}, "2023-12-01", "2024-01-01"),
        ({"year": 2021, "iso_week": 1}, "2021-01-04", "2021-01-11"),
        ({"date_from": date(2024, 1, 1), "date_to": date(2024, 1, 14)}, "2024-01-01", "2024-01-15"),
    ],
)
def test_periods(kwargs, start, end):
    p = domain.period(**kwargs)
    assert (p.start.date().isoformat(), p.end.date().isoformat()) == (start, end)


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in domain.STATUSES for t in domain.STATUSES])
def test_transition_table(current, target):
    legal = {
        ("created", "approved"),
        ("created", "canceled"),
        ("approved", "ordered"),
        ("approved", "canceled"),
        ("ordered", "shipping"),
        ("shipping", "completed"),
    }
    eta = date(2026, 1, 1) if target in ("ordered", "shipping") else None
    if (current, target) in legal:
        domain.check_transition(current, target, eta)
    else:
        with pytest.raises(domain.IllegalTransition):
            domain.check_transition(current, target, eta)


@pytest.mark.parametrize("relative", sorted(sample_events()))
def test_sample_event_files_are_what_the_builders_produce(relative):
    assert json.loads((EVENTS / relative).read_text()) == sample_events()[relative], (
        "regenerate with: python -m functions.snacks.demo"
    )


def test_the_flush_function_imports_neither_fastapi_nor_sqlalchemy():
    code = (
        "import sys, functions.snacks.flush; "
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'argon2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"PYTHONPATH": f"{ROOT}/layers/common/python:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"
