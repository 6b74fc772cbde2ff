"""``opsdeck openapi``: the OpenAPI document of the whole HTTP API (what ``GET /ops/openapi.json`` serves).

``--function NAME`` prints one HTTP function's own document instead (what its
``<base>/openapi.json`` serves); ``--output FILE`` writes it to a file (for client generators).
Nothing runs but the apps' document builders: no database, no AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "openapi", help="print the OpenAPI document of the whole HTTP API (or of one function)"
    )
    p.add_argument(
        "--function", metavar="NAME", help="one HTTP function's own document (e.g. marketplace-api)"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from functions import catalog
    from functions.ops import openapi
    from opsdeck_cli.main import CommandError

    if args.function:
        function = catalog.by_name().get(args.function)
        http = [f.name for f in openapi.http_functions()]
        if function is None or function.name not in http:
            raise CommandError(
                f"{args.function!r} is not an HTTP function (HTTP functions: {', '.join(http)})"
            )
        document = openapi.function_document(function)
    else:
        document = openapi.document()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(document['paths'])} paths)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
