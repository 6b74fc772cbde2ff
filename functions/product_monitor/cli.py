"""``opsdeck product-monitor …``: replay raw events, plan a run, serve the Apify simulator.

``opsdeck product-monitor replay-raw [--job ID | --run ID | --since ISO]`` re-normalises the
raw Apify items kept in ``staging_raw.raw_batches`` (the latest attempt of each job) into the
core tables, in one transaction per job, against the configured ``DATABASE_URL`` (and
``REDIS_URL`` for cache invalidation). Idempotent: rows already there are left as they are,
alerts are not added twice. Prints the totals as JSON.

``opsdeck product-monitor plan [--kind daily|health] [--asin A ...]`` records a run and
enqueues its jobs (needs the queue: ``PRODUCT_MONITOR_JOBS_QUEUE_URL`` or a local cloud).

``opsdeck product-monitor simulator [--port 8378]`` serves the Apify simulator alone and prints
the variables that point the functions at it.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import datetime


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "product-monitor", help="product_monitor (seed 002): replay raw events, plan runs, simulator"
    )
    commands = p.add_subparsers(dest="product_monitor_command", required=True, metavar="COMMAND")

    r = commands.add_parser("replay-raw", help="re-normalise staged raw Apify items into the core tables")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--job", dest="job_id", type=uuid.UUID, help="one ingest job")
    which.add_argument("--run", dest="run_id", type=uuid.UUID, help="every job of one ingest run")
    which.add_argument("--since", type=datetime.fromisoformat, help="items received at or after (ISO 8601)")
    r.set_defaults(run=run_replay)

    plan = commands.add_parser("plan", help="record an ingest run and enqueue its jobs now")
    plan.add_argument("--kind", choices=("daily", "health"), default="daily")
    plan.add_argument("--asin", action="append", help="fetch these ASINs instead of the tracked set")
    plan.set_defaults(run=run_plan)

    s = commands.add_parser("simulator", help="serve the Apify simulator and print its environment")
    s.add_argument("--port", type=int, default=8378, help="port on 127.0.0.1 (default 8378)")
    s.add_argument("--rate", type=float, default=5.0, help="requests per second before 429s (5)")
    s.add_argument("--malformed", type=float, default=0.02, help="fraction of malformed items (0.02)")
    s.set_defaults(run=run_simulator)


def run_replay(args: argparse.Namespace) -> int:
    from functions.product_monitor import ingest
    from opsdeck_cli.main import CommandError

    if args.since is not None and args.since.tzinfo is None:
        raise CommandError("--since needs a time zone (e.g. 2026-12-03T00:00:00+00:00)")
    totals = ingest.replay(job_id=args.job_id, run_id=args.run_id, since=args.since)
    print(json.dumps(totals, indent=2))
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from functions.product_monitor import ingest
    from functions.product_monitor.domain import valid_asin
    from opsdeck_cli.main import CommandError

    bad = [a for a in args.asin or () if not valid_asin(a)]
    if bad:
        raise CommandError(f"not an ASIN: {', '.join(bad)}")
    print(json.dumps(ingest.plan(args.kind, "cli", asins=args.asin), indent=2))
    return 0


def run_simulator(args: argparse.Namespace) -> int:
    from functions.product_monitor import simulator
    from localcloud.server import serve_simulator_until_interrupted
    from opsdeck_cli.main import CommandError

    sim = simulator.Simulator(
        rate_per_s=args.rate, burst=max(1, int(args.rate * 2)), malformed_rate=args.malformed
    )
    app = simulator.create_app(sim)
    try:
        serve_simulator_until_interrupted(app, args.port, "Apify simulator", simulator.local_environment)
    except (OSError, RuntimeError) as exc:
        raise CommandError(f"cannot serve the simulator on 127.0.0.1:{args.port}: {exc}") from None
    return 0
