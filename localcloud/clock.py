"""Time for the local cloud: the real clock, or a virtual one that only moves when told to.

Everything time-dependent in the emulation (message timestamps, visibility timeouts,
batching windows, delays, retention, schedules, async retries) reads ``clock.time()``
(epoch seconds). With the virtual clock, ``LocalCloud.advance(seconds)`` moves time and the
engine processes, in order, every timer that falls due — so a 12-hour visibility timeout
or a daily cron takes microseconds in a test and happens the same way every run.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    virtual = False

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def millis(self) -> int:
        return int(self.time() * 1000)


class VirtualClock(Clock):
    """Starts at ``start`` (default: now, truncated to the second) and moves only by ``set``."""

    virtual = True

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = float(int(time.time()))
        elif isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("the virtual clock needs an aware datetime (UTC)")
            start = start.timestamp()
        self._t = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._t:
                raise ValueError("the virtual clock never goes backwards")
            self._t = t
