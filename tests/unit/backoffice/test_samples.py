"""Sample events are generated (``python -m functions.backoffice.demo``); handler imports stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from functions.backoffice.demo import sample_events
from tests.support import EVENTS, ROOT


@pytest.mark.parametrize("relative", sorted(sample_events()))
def test_sample_event_files_are_what_the_builders_produce(relative):
    assert json.loads((EVENTS / relative).read_text()) == sample_events()[relative], (
        "regenerate with: python -m functions.backoffice.demo"
    )


def test_the_consumer_sample_has_a_poison_record_and_a_duplicate():
    records = sample_events()["backoffice-consumer/batch-with-poison.json"]["Records"]
    bodies = [r["body"] for r in records]
    assert len(set(bodies)) == len(bodies) - 1
    assert sum('"12.50"' in b for b in bodies) == 1


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("functions.backoffice.api", "sqlalchemy"),
        ("functions.backoffice.consumer", "fastapi"),
        ("functions.backoffice.backfill", "fastapi"),
    ],
)
def test_handler_imports_stay_light(module, absent):
    probe = f"import sys, {module}; print({absent!r} in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers/common/python'}:{ROOT}", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
