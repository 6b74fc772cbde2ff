"""``opsdeck``: the one command-line entry point.

Each area registers its subcommands: ``register(subparsers)`` in the modules listed in
``COMMAND_MODULES``, plus ``functions/<capability>/cli.py`` of every capability that has one.
An expected failure prints ONE line naming what is wrong and exits 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "opsdeck_cli.db",
    "opsdeck_cli.token",
    "opsdeck_cli.functions",
    "opsdeck_cli.openapi",
    "localcloud.cli",
)


class CommandError(Exception):
    """An expected failure of a command, reported as one line."""


def build_parser() -> argparse.ArgumentParser:
    from functions.catalog import CAPABILITIES

    parser = argparse.ArgumentParser(prog="opsdeck", description="opsdeck: five commerce backends, one app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = list(COMMAND_MODULES) + [f"functions.{cap}.cli" for cap in CAPABILITIES]
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package (a capability) does not exist yet
            found = False
        if found:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from opsdeck.errors import OpsdeckError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except (OpsdeckError, CommandError) as exc:
        print(f"opsdeck: error: {getattr(exc, 'detail', None) or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
