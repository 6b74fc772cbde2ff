"""``opsdeck token``: a token from the local dev issuer (HS256).

Uses the JWT_* settings of the environment when they name an HS256 key; otherwise the
local cloud's dev issuer (its secret in ``<root>/jwt-secret``), so that a token for the
running local cloud is one command in any shell.
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="issue a dev JWT for calling protected routes locally")
    p.add_argument("--sub", default="dev-user", help="subject (default: dev-user)")
    p.add_argument("--role", action="append", default=[], help="role claim, repeatable (e.g. ADMIN_READ)")
    p.add_argument("--scope", action="append", default=[], help="scope, repeatable")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.add_argument("--root", default=".opsdeck", help="local cloud state directory (default: .opsdeck)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from opsdeck.auth import issue_dev_token

    if not (os.environ.get("JWT_HS256_SECRET") or os.environ.get("JWT_HS256_SECRET_ID")):
        from pathlib import Path

        from localcloud import services
        from localcloud.cloud import AUDIENCE, ISSUER
        from opsdeck.settings import platform

        os.environ.update(
            JWT_HS256_SECRET=services.jwt_secret(Path(args.root)),
            JWT_ISSUER=ISSUER,
            JWT_AUDIENCE=AUDIENCE,
            JWT_ALGORITHMS="HS256",
        )
        platform.cache_clear()
    print(issue_dev_token(args.sub, args.role, scopes=args.scope, ttl_s=args.ttl))
    return 0
