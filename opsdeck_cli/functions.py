"""``opsdeck functions``: the catalog as a table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("functions", help="list every function of the catalog and its trigger")
    p.set_defaults(run=run)


def _trigger(function) -> str:
    t = function.trigger
    if t.kind == "http":
        return ", ".join(r.key for r in t.routes)
    if t.kind == "schedule":
        return t.expression
    if t.kind == "queue":
        return f"queue {t.queue_name} (batch {t.batch_size}, DLQ after {t.max_receive_count})"
    return "on deploy"


def run(args: argparse.Namespace) -> int:
    from functions.catalog import FUNCTIONS

    width = max(len(f.name) for f in FUNCTIONS)
    for f in FUNCTIONS:
        print(f"{f.name:<{width}}  {f.trigger.kind:<8}  {_trigger(f)}")
    return 0
