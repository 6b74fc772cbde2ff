"""``opsdeck marketplace …``: run a sync from a shell; serve the SP-API/Slack simulator.

``opsdeck marketplace sync [--inventory]`` runs the scheduled function's handler in this
process against the configured database, Redis and SP-API (``DATABASE_URL``, ``REDIS_URL``,
``SPAPI_*``) and prints the run's result as JSON; exit status 1 when the run failed.

``opsdeck marketplace simulator [--port 8377]`` serves the simulator (LWA, SP-API, Slack
sink) alone and prints the variables that point the functions at it — for working on the
capability without the whole local cloud.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("marketplace", help="marketplace (seed 000): run a sync, serve the SP-API simulator")
    commands = p.add_subparsers(dest="marketplace_command", required=True, metavar="COMMAND")

    s = commands.add_parser("sync", help="run the orders (or inventory) sync now, in this process")
    s.add_argument("--inventory", action="store_true", help="the FBA inventory sync instead of orders")
    s.set_defaults(run=run_sync)

    m = commands.add_parser(
        "simulator", help="serve the SP-API/LWA/Slack simulator and print its environment"
    )
    m.add_argument("--port", type=int, default=8377, help="port on 127.0.0.1 (default 8377)")
    m.add_argument("--orders-per-minute", type=float, default=0.5, help="steady new-order flow (0.5)")
    m.add_argument("--backfill", type=int, default=40, help="orders over the last 3 days at start (40)")
    m.set_defaults(run=run_simulator)


class _ShellContext:
    """A Lambda-like context for a run from the shell: 15 minutes, like the deployed function."""

    function_name = "marketplace-cli"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:marketplace-cli"
    memory_limit_in_mb = 512
    aws_request_id = "cli"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def run_sync(args: argparse.Namespace) -> int:
    if args.inventory:
        from functions.marketplace.inventory_sync import handler
    else:
        from functions.marketplace.orders_sync import handler
    result = handler({"trigger": "cli"}, _ShellContext())
    print(json.dumps(result, indent=2, default=str))
    return 1 if result.get("status") == "failed" else 0


def run_simulator(args: argparse.Namespace) -> int:
    from functions.marketplace import simulator
    from localcloud.server import serve_simulator_until_interrupted
    from opsdeck_cli.main import CommandError

    sim = simulator.Simulator(
        seed=7, backfill=args.backfill, order_rate_per_min=args.orders_per_minute, skus=25
    )
    app = simulator.create_app(sim)
    try:
        serve_simulator_until_interrupted(
            app, args.port, "marketplace simulator", simulator.local_environment
        )
    except (OSError, RuntimeError) as exc:
        raise CommandError(f"cannot serve the simulator on 127.0.0.1:{args.port}: {exc}") from None
    return 0
