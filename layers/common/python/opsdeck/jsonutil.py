"""The one JSON encoding used for jsonb columns, cache entries and queue bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def default(value: Any) -> Any:
    """Decimal → string (money keeps its digits), date/datetime → ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON with ``default`` for Decimal and datetimes."""
    return json.dumps(value, separators=(",", ":"), default=default)
