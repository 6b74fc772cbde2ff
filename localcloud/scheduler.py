"""EventBridge scheduled rules and Lambda's asynchronous invocations.

* ``Scheduler``: one ``ScheduledRule`` per catalog ``Schedule`` (rule ``opsdeck-local-<name>``
  on the local endpoint). When a fire time comes, the rule's current state and expression
  are read from the endpoint: a rule disabled through the EventBridge API (``DisableRule``,
  as platform_sync does) does not fire; a changed expression is re-planned. Rate schedules
  count from the rule's creation; cron times are minutes, UTC. A clock that jumps past
  several fire times (a suspended laptop) fires once, as EventBridge does not backfill.
* ``AsyncQueue``: EventBridge invokes Lambda asynchronously, and so does ``Invoke`` with
  ``InvocationType=Event``: a function error is retried twice, one minute and then two
  minutes later (Lambda's defaults), with the same event.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localcloud import schedules
from localcloud.events import schedule_event

RETRY_DELAYS_S = (60, 120)


@dataclass
class ScheduledRule:
    schedule_name: str
    rule_name: str
    runtime: Any
    detail: dict[str, Any]
    expression: str
    anchor: float
    parsed: schedules.Cron | schedules.Rate = field(init=False)
    next_fire: float | None = None

    def __post_init__(self) -> None:
        self.parsed = schedules.parse(self.expression)

    def plan(self, after: float) -> None:
        when = datetime.fromtimestamp(after, UTC)
        anchor = datetime.fromtimestamp(self.anchor, UTC)
        nxt = schedules.next_fire(self.parsed, when, anchor=anchor)
        self.next_fire = nxt.timestamp() if nxt else None

    def event(self, when: float) -> dict[str, Any]:
        return schedule_event(self.rule_name, when=datetime.fromtimestamp(when, UTC), detail=self.detail)


class Scheduler:
    def __init__(
        self, rules: list[ScheduledRule], state: Callable[[str], tuple[str, str | None] | None]
    ) -> None:
        self.rules = {r.schedule_name: r for r in rules}
        self.by_rule = {r.rule_name: r for r in rules}
        self.state = state
        self.enabled = True

    def start(self, now: float) -> None:
        for rule in self.rules.values():
            rule.plan(now)

    def refresh(self, now: float) -> None:
        """Re-read expressions (PutRule may have changed one) and re-plan changed rules."""
        for rule in self.rules.values():
            current = self.state(rule.rule_name)
            if current is None or not current[1] or current[1] == rule.expression:
                continue
            try:
                rule.parsed = schedules.parse(current[1])
            except schedules.ScheduleExpressionError:
                continue
            rule.expression, rule.anchor = current[1], now
            rule.plan(now)

    def next_deadline(self) -> float | None:
        if not self.enabled:
            return None
        times = [r.next_fire for r in self.rules.values() if r.next_fire is not None]
        return min(times) if times else None

    def due(self, now: float) -> list[tuple[ScheduledRule, float]]:
        """Rules whose fire time has come and that are enabled right now, with that time."""
        fired: list[tuple[ScheduledRule, float]] = []
        if not self.enabled:
            return fired
        for rule in self.rules.values():
            if rule.next_fire is None or rule.next_fire > now:
                continue
            when = rule.next_fire
            current = self.state(rule.rule_name)
            if current is not None and current[1] and current[1] != rule.expression:
                self.refresh(now)
                continue
            rule.plan(when if now - when < 60 else now)  # no backfill after a long pause
            if current is not None and current[0] == "ENABLED":
                fired.append((rule, when))
        fired.sort(key=lambda pair: pair[1])
        return fired


@dataclass(order=True)
class AsyncCall:
    due: float
    seq: int
    runtime: Any = field(compare=False)
    event: Any = field(compare=False)
    trigger: str = field(compare=False)
    event_id: str | None = field(compare=False, default=None)
    attempt: int = field(compare=False, default=1)


class AsyncQueue:
    """Pending asynchronous invocations (first attempts and retries), by due time."""

    def __init__(self) -> None:
        self._heap: list[AsyncCall] = []
        self._seq = itertools.count()

    def add(
        self,
        runtime: Any,
        event: Any,
        *,
        trigger: str,
        due: float,
        event_id: str | None = None,
        attempt: int = 1,
    ) -> None:
        heapq.heappush(
            self._heap, AsyncCall(due, next(self._seq), runtime, event, trigger, event_id, attempt)
        )

    def retry(self, call: AsyncCall, now: float) -> bool:
        """Queue the next attempt of a failed call; False when the retries are used up."""
        if call.attempt > len(RETRY_DELAYS_S):
            return False
        self.add(
            call.runtime,
            call.event,
            trigger=call.trigger,
            due=now + RETRY_DELAYS_S[call.attempt - 1],
            event_id=call.event_id,
            attempt=call.attempt + 1,
        )
        return True

    def due(self, now: float) -> list[AsyncCall]:
        out = []
        while self._heap and self._heap[0].due <= now:
            out.append(heapq.heappop(self._heap))
        return out

    def next_deadline(self) -> float | None:
        return self._heap[0].due if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
