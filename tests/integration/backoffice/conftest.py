"""Fixtures of the backoffice integration tests (helpers are in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.backoffice.helpers import JWT
from tests.support import env


@pytest.fixture
def jwt_env() -> Iterator[dict[str, str]]:
    """The local dev issuer (HS256), no status-group mapping configured."""
    with env(**JWT, BACKOFFICE_STATUS_GROUPS=None):
        yield JWT
