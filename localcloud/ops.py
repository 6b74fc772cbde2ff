"""The ops API's local backend: the running ``LocalCloud``, read in process.

``LocalCloud.start`` registers it (``functions.ops.backend.use``); the real ``ops-api`` handler,
invoked through the local API Gateway like any HTTP function, then reads the queue engine
(depths, oldest message, side-effect-free peek), the scheduler and the EventBridge rules on the
local endpoint, the invocation journal and the invocation details the cloud keeps in memory.
Actions go through the same paths as everything else: replay is ``LocalCloud.replay`` (the SQS
API of the local endpoint and ``opsdeck.replay``, the CLI's code), fire now is an asynchronous
invocation like EventBridge's, enable/disable is ``EnableRule``/``DisableRule`` on the local
endpoint (the scheduler reads the rule's state at each fire time), re-invoke is an ``invoke``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from functions.ops.backend import (
    CONSOLE_READ_ROUTES,
    ERROR_OUTCOMES,
    capability_state,
    failure_reason,
    p95,
    queue_entries,
)
from localcloud import awsapi
from localcloud.errors import LocalCloudError
from localcloud.events import rule_arn
from opsdeck.errors import NotFound


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _iso(t: float | None) -> str | None:
    from localcloud.cloud import _iso as iso

    return iso(t) if t is not None else None


class LocalBackend:
    mode = "local"

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud

    # ------------------------------------------------------------- functions
    def _recent(self, window_s: float) -> list[dict[str, Any]]:
        since = self.cloud.clock.time() - window_s
        out = []
        for entry in reversed(self.cloud.journal()):
            try:
                start = _ts(entry["start"])
            except (KeyError, ValueError):
                continue
            if start < since:
                break
            out.append({**entry, "_t": start})
        return out

    def function_stats(self, window_s: int) -> dict[str, dict[str, Any]]:
        durations: dict[str, list[float]] = {}
        stats: dict[str, dict[str, Any]] = {
            f.name: {"invocations": 0, "errors": 0, "p95_ms": None} for f in self.cloud.catalog
        }
        for entry in self._recent(window_s):
            s = stats.setdefault(entry["function"], {"invocations": 0, "errors": 0, "p95_ms": None})
            s["invocations"] += 1
            s["errors"] += entry.get("outcome") in ERROR_OUTCOMES
            durations.setdefault(entry["function"], []).append(float(entry.get("duration_ms") or 0))
        for name, values in durations.items():
            stats[name]["p95_ms"] = p95(values)
        return stats

    # ---------------------------------------------------------------- queues
    def _entries(self) -> list[dict[str, Any]]:
        return queue_entries(tuple(self.cloud.catalog))

    def _entry(self, name: str) -> dict[str, Any]:
        for entry in self._entries():
            if name in (entry["name"], entry["queue"]):
                return entry
        raise NotFound(f"unknown queue {name!r}")

    def queues(self) -> list[dict[str, Any]]:
        engine, now = self.cloud.engine, self.cloud.clock.time()
        out = []
        for entry in self._entries():
            visible, inflight, delayed = engine.depth(entry["queue"])
            with engine.lock:
                sent = [m.sent_ms for m, _ in engine.queue(entry["queue"]).all_messages()]
            oldest = round(now - min(sent) / 1000, 3) if sent else None
            out.append(
                {
                    **entry,
                    "visible": visible,
                    "in_flight": inflight,
                    "delayed": delayed,
                    "oldest_age_s": oldest,
                }
            )
        return out

    def peek(self, queue: str, limit: int) -> list[dict[str, Any]]:
        entry = self._entry(queue)
        messages = self.cloud.engine.peek(entry["queue"], limit)
        logs = self._consumer_logs(entry["consumer"]) if messages else []
        return [
            {
                "message_id": m["MessageId"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "message_attributes": m["MessageAttributes"],
                "receive_count": int(m["Attributes"].get("ApproximateReceiveCount", 0)),
                "state": m["State"],
                "failure": failure_reason(logs, m["MessageId"]),
            }
            for m in messages
        ]

    def _consumer_logs(self, function: str) -> list[str]:
        lines: list[str] = []
        for entry in self.cloud.journal()[-2000:]:
            if entry.get("function") == function and entry.get("trigger") == "queue":
                details = self.cloud.details(entry["request_id"])
                if details:
                    lines += details["logs"]
        return lines

    def replay(self, dlq: str, **options: Any) -> dict[str, Any]:
        entry = self._entry(dlq)
        if not entry["dlq"]:
            from opsdeck.errors import NotFound

            # no replay of that queue exists: 404 (the document's queue is any queue name)
            raise NotFound(f"{entry['name']!r} is not a dead-letter queue (its DLQ is {entry['name']}-dlq)")
        to = options.pop("to", None)
        if to:
            to = self._entry(to)["name"]
        return self.cloud.replay(entry["name"], to=to, **options)

    # ------------------------------------------------------------- schedules
    def _last_fires(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for entry in self.cloud.journal():
            if entry.get("trigger") == "schedule":
                last[entry["function"]] = entry["start"]
        return last

    def _schedule(self, rule: Any, last: dict[str, str]) -> dict[str, Any]:
        state = awsapi.rule_state(rule.rule_name)
        function = rule.runtime.function
        return {
            "name": rule.schedule_name,
            "rule": rule.rule_name,
            "arn": rule_arn(rule.rule_name),
            "expression": state[1] if state and state[1] else rule.expression,
            "state": state[0] if state else "DELETED",
            "function": function.name,
            "capability": function.capability,
            "last_fire": last.get(function.name),
            "next_fire": _iso(rule.next_fire) if state and state[0] == "ENABLED" else None,
            "capability_state": capability_state(function, rule.schedule_name),
        }

    def schedules(self) -> list[dict[str, Any]]:
        last = self._last_fires()
        return [self._schedule(r, last) for r in self.cloud.scheduler.rules.values()]

    def _rule(self, schedule: str) -> Any:
        try:
            return self.cloud._rule(schedule)
        except LocalCloudError as exc:
            raise NotFound(exc.detail) from None

    def fire(self, schedule: str) -> dict[str, Any]:
        self._rule(schedule)
        return self.cloud.fire_async(schedule)

    def set_enabled(self, schedule: str, enabled: bool) -> dict[str, Any]:
        rule = self._rule(schedule)
        events = self.cloud.aws_client("events")
        (events.enable_rule if enabled else events.disable_rule)(Name=rule.rule_name)
        self.cloud.rules_changed()
        return self._schedule(rule, self._last_fires())

    # ----------------------------------------------------------- invocations
    def invocations(
        self,
        *,
        function: str | None,
        trigger: str | None,
        outcome: str | None,
        limit: int,
        hide_console: bool = False,
    ) -> list[dict[str, Any]]:
        out = []
        for entry in reversed(self.cloud.journal()):
            if hide_console and entry.get("route") in CONSOLE_READ_ROUTES:
                continue
            if function and entry.get("function") != function:
                continue
            if trigger and entry.get("trigger") != trigger:
                continue
            if outcome and entry.get("outcome") != outcome:
                continue
            out.append({k: v for k, v in entry.items() if k != "stack"})
            if len(out) >= limit:
                break
        return out

    def invocation(self, request_id: str, function: str | None) -> dict[str, Any]:
        entry = next((e for e in reversed(self.cloud.journal()) if e.get("request_id") == request_id), None)
        if entry is None:
            raise NotFound(f"no invocation {request_id!r} in this session's journal")
        details = self.cloud.details(request_id)
        return {
            **entry,
            "event": details["event"] if details else None,
            "result": details["result"] if details else None,
            "logs": details["logs"] if details else [],
            "kept": details is not None,
        }

    def reinvoke(self, request_id: str) -> dict[str, Any]:
        found = self.invocation(request_id, None)
        if not found["kept"]:
            from opsdeck.errors import Conflict

            raise Conflict(f"the event of {request_id!r} is no longer kept (only the last invocations are)")
        invocation = self.cloud.invoke_raw(found["function"], found["event"])
        return {
            "function": found["function"],
            "request_id": invocation.request_id,
            "outcome": invocation.outcome,
            "error": invocation.error,
            "result": json.loads(json.dumps(invocation.result, default=str)),
        }

    # ---------------------------------------------------------------- charts
    def series(self, minutes: int) -> dict[str, Any]:
        now = self.cloud.clock.time()
        end = (int(now // 60) + 1) * 60
        start = end - minutes * 60
        names = [f.name for f in self.cloud.catalog]
        invocations = {n: [0] * minutes for n in names}
        errors = {n: [0] * minutes for n in names}
        for entry in self._recent(now - start):
            i = int((entry["_t"] - start) // 60)
            if 0 <= i < minutes:
                invocations.setdefault(entry["function"], [0] * minutes)[i] += 1
                if entry.get("outcome") in ERROR_OUTCOMES:
                    errors.setdefault(entry["function"], [0] * minutes)[i] += 1
        self.cloud.sample_depths(now, force=True)
        depth: dict[str, list[list[Any]]] = {}
        for t, sample in list(self.cloud.depth_history):
            if t < start:
                continue
            for queue, (visible, inflight) in sample.items():
                depth.setdefault(queue, []).append([_iso(t), visible, inflight])
        return {
            "start": _iso(start),
            "end": _iso(end),
            "step_s": 60,
            "minutes": [_iso(start + 60 * i) for i in range(minutes)],
            "invocations": {n: v for n, v in invocations.items() if any(v)},
            "errors": {n: v for n, v in errors.items() if any(v)},
            "queue_depth": depth,
        }
