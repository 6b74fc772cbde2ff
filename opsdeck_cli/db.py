"""``opsdeck db upgrade|current``: the same upgrade code the deploy-time migration function runs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply every capability's migrations (alembic upgrade heads)")
    up.set_defaults(run=upgrade)
    cur = db.add_parser("current", help="show the revision of each capability branch")
    cur.set_defaults(run=current)


def upgrade(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from functions.ops.migrate import upgrade_and_record

    heads = upgrade_and_record(trigger="cli", started=datetime.now(UTC))
    print("database at " + ", ".join(heads))
    return 0


def current(args: argparse.Namespace) -> int:
    from opsdeck.migrations import current as current_revisions
    from opsdeck.migrations import heads

    at, latest = set(current_revisions()), set(heads())
    for rev in sorted(at | latest):
        state = "current" if rev in at and rev in latest else ("pending" if rev in latest else "unknown")
        print(f"{rev}\t{state}")
    return 0 if at == latest else 1
