"""``cloud``: a LocalCloud on the test catalog, virtual clock starting Monday 2026-01-05 00:00 UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.localcloud import handlers
from tests.localcloud.catalog import CATALOG

START = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def cloud(tmp_path, redis_url) -> Iterator:
    from localcloud import LocalCloud

    handlers.CALLS.clear()
    handlers.FLAKY["failing"] = True
    with LocalCloud(
        root=tmp_path / ".opsdeck", redis_url=redis_url, virtual_clock=START, catalog=CATALOG, deploy=False
    ) as local:
        yield local
    handlers.CALLS.clear()
