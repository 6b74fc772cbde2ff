"""The invocation journal: one JSON line per invocation in ``<root>/journal.jsonl``.

Every invocation the local cloud makes (HTTP request, schedule, queue batch, deploy,
direct invoke) is appended with ``function``, ``trigger``, ``event_id``, ``request_id``,
``start`` (ISO-8601 UTC, on the cloud's clock), ``duration_ms``, ``outcome`` (``ok``,
``partial``, ``error``, ``timeout``, ``invalid-response``, ``throttled``),
``batch_item_failures`` and ``error`` (plus ``status``/``route`` for HTTP, ``records``
for queues, ``attempt`` for retried async invocations, ``stack`` for errors).
``opsdeck local log [-f]`` reads it; ``LocalCloud.journal()`` returns this session's lines.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

MEMORY_LIMIT = 100_000


class Journal:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: deque[dict[str, Any]] = deque(maxlen=MEMORY_LIMIT)
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str, separators=(",", ":"))
        with self._lock:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read(path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The journal's entries (the ``last`` ones), skipping lines that are not JSON."""
    if not path.exists():
        return []
    out: deque[dict[str, Any]] = deque(maxlen=last) if last else deque()
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return list(out)


def follow(path: Path, *, poll_s: float = 0.2) -> Iterator[dict[str, Any]]:
    """New entries as they are appended (``tail -f``); waits for the file to appear."""
    while not path.exists():
        time.sleep(poll_s)
    with path.open(encoding="utf-8") as f:
        f.seek(0, 2)
        pending = ""
        while True:
            chunk = f.readline()
            if not chunk:
                time.sleep(poll_s)
                continue
            pending += chunk
            if not pending.endswith("\n"):
                continue
            try:
                entry = json.loads(pending)
            except ValueError:
                entry = None
            pending = ""
            if entry is not None:
                yield entry


def format_entry(entry: dict[str, Any]) -> str:
    """One human line: time, function, trigger, what, outcome, duration, error."""
    start = str(entry.get("start", ""))
    clock = start[11:23] if len(start) >= 23 else start
    what = entry.get("route") or entry.get("event_id") or ""
    if entry.get("trigger") == "queue":
        what = f"{entry.get('records', '?')} record(s)"
    outcome = str(entry.get("outcome", "?"))
    if "status" in entry:
        outcome = f"{entry['status']} {outcome}"
    failures = entry.get("batch_item_failures") or []
    if failures:
        outcome += f" ({len(failures)} failed)"
    line = (
        f"{clock}  {entry.get('function', '?'):<28} {entry.get('trigger', '?'):<8} {what}  "
        f"{outcome}  {entry.get('duration_ms', 0):.1f} ms"
    )
    if entry.get("attempt", 1) > 1:
        line += f"  attempt {entry['attempt']}"
    if entry.get("error"):
        line += f"  {entry['error']}"
    return line
