"""Physical names of the resources the catalog names: ``<stack>-<catalog name>``.

Functions, queues and rules get stable names (not CloudFormation-generated ones) because
code and people address them by name: ``platform_sync`` enables/disables rules by name
(``<SCHEDULE>_RULE_NAME``), ``invokes`` passes function names, operators replay DLQs by name.
Knowing a name without referencing the resource also keeps cross-references acyclic
(a function may invoke a function that invokes it; a scheduled function may control its own rule).
AWS's length limits are checked here, at synth, with the offending name in the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.catalog import Function, Queue

LIMITS = {"function": 64, "rule": 64, "queue": 80, "secret": 512}


class ResourceNameError(ValueError):
    """A derived physical name exceeds an AWS limit."""


@dataclass(frozen=True)
class Names:
    stack: str

    def _check(self, kind: str, name: str) -> str:
        if len(name) > LIMITS[kind]:
            raise ResourceNameError(
                f"{kind} name {name!r} has {len(name)} characters; AWS allows {LIMITS[kind]} "
                "(use a shorter stage or stackName)"
            )
        return name

    def function(self, function: Function | str) -> str:
        name = function if isinstance(function, str) else function.name
        return self._check("function", f"{self.stack}-{name}")

    def rule(self, schedule: str) -> str:
        return self._check("rule", f"{self.stack}-{schedule}")

    def queue(self, queue: Queue) -> str:
        return self._check("queue", f"{self.stack}-{queue.queue_name}")

    def dlq(self, queue: Queue) -> str:
        return self._check("queue", f"{self.stack}-{queue.dlq_name}")

    def secret(self, secret: str) -> str:
        return self._check("secret", f"{self.stack}/{secret}")

    def log_group(self, function: Function | str) -> str:
        return f"/aws/lambda/{self.function(function)}"
