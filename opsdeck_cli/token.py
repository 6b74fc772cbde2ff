"""``opsdeck token``: a token from the local dev issuer (HS256, ``JWT_HS256_SECRET``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="issue a dev JWT for calling protected routes locally")
    p.add_argument("--sub", default="dev-user", help="subject (default: dev-user)")
    p.add_argument("--role", action="append", default=[], help="role claim, repeatable (e.g. ADMIN_READ)")
    p.add_argument("--scope", action="append", default=[], help="scope, repeatable")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from opsdeck.auth import issue_dev_token

    print(issue_dev_token(args.sub, args.role, scopes=args.scope, ttl_s=args.ttl))
    return 0
