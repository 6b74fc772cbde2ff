"""``opsdeck backoffice …``: backfill the read store from a snapshot; generate change streams.

``opsdeck backoffice backfill FILE`` reads a JSONL file (one change envelope per line, normally
``op: r`` snapshot reads; blank lines ignored) and applies it in chunks:

* locally (default): through ``backfill.apply_chunk`` — the consumer's apply path — against
  ``DATABASE_URL``;
* ``--function NAME``: by invoking the deployed backfill function (boto3 ``lambda.invoke``,
  synchronous), chunks capped by count and by payload size (Lambda accepts 6 MB).

Either way re-running is harmless (the LWW guard skips what is already there). Invalid lines
are listed by number; the exit status is 1 when there were any.

``opsdeck backoffice generate`` writes a simulated stream (``--snapshot``: the final rows as
``op: r``) for demos and backfill trials.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

MAX_PAYLOAD_BYTES = 5_000_000  # below Lambda's 6 MB synchronous payload limit, with headroom


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backoffice", help="backoffice (seed 004): backfill the read store, generate streams")
    commands = p.add_subparsers(dest="backoffice_command", required=True, metavar="COMMAND")

    b = commands.add_parser(
        "backfill",
        help="apply a JSONL snapshot through the consumer's apply path (locally, or via the function)",
        description=__doc__.split("\n\n")[1],
    )
    b.add_argument("file", help="JSONL file, one change envelope per line ('-' reads stdin)")
    b.add_argument("--function", metavar="NAME", help="invoke this deployed backfill function instead")
    b.add_argument("--chunk-size", type=int, default=5000, help="changes per transaction/invocation (5000)")
    b.set_defaults(run=run_backfill)

    g = commands.add_parser("generate", help="write a simulated OLTP change stream as JSONL")
    g.add_argument("--orders", type=int, default=100, help="payment orders to simulate (100)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--snapshot", action="store_true", help="the final rows as op r (a backfill file)")
    g.add_argument("--duplicates", type=float, default=0.05, help="share delivered twice (0.05)")
    g.add_argument("--output", "-o", default="-", help="file to write ('-' = stdout)")
    g.set_defaults(run=run_generate)


# ---------------------------------------------------------------------- backfill


def _chunks(stream: TextIO, size: int) -> Iterator[tuple[int, list[str]]]:
    """``(offset, lines)``: offset = number of lines before the chunk; blank lines keep numbers."""
    chunk: list[str] = []
    chunk_bytes = 0
    offset = 0
    pending_blank: list[int] = []
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            pending_blank.append(number)
            continue
        if chunk and (len(chunk) >= size or chunk_bytes + len(text) > MAX_PAYLOAD_BYTES or pending_blank):
            yield offset, chunk
            chunk, chunk_bytes = [], 0
        if not chunk:
            offset = number - 1
        pending_blank.clear()
        chunk.append(text)
        chunk_bytes += len(text) + 3
    if chunk:
        yield offset, chunk


def run_backfill(args: argparse.Namespace) -> int:
    from opsdeck_cli.main import CommandError

    if args.chunk_size < 1 or args.chunk_size > 20_000:
        raise CommandError("--chunk-size must be within 1..20000")
    if args.file == "-":
        stream: TextIO = sys.stdin
    else:
        path = Path(args.file)
        if not path.is_file():
            raise CommandError(f"{args.file}: no such file")
        stream = path.open(encoding="utf-8")
    apply = _invoker(args.function) if args.function else _local
    totals = {"received": 0, "written": 0, "skipped": 0, "pairs_completed": 0}
    invalid: list[dict[str, Any]] = []
    with stream:
        for offset, lines in _chunks(stream, args.chunk_size):
            summary = apply(lines, offset)
            for key in totals:
                totals[key] += summary.get(key, 0)
            invalid.extend(summary.get("invalid", []))
    for item in invalid[:20]:
        print(f"line {item['line']}: {item['reason']}", file=sys.stderr)
    if len(invalid) > 20:
        print(f"… and {len(invalid) - 20} more invalid lines", file=sys.stderr)
    where = f"function {args.function}" if args.function else "local database"
    print(
        f"backfill {args.file} → {where}: {totals['received']} changes, {totals['written']} written, "
        f"{totals['skipped']} skipped (duplicate or older), {len(invalid)} invalid, "
        f"{totals['pairs_completed']} pairs completed"
    )
    return 1 if invalid else 0


def _local(lines: list[str], offset: int) -> dict[str, Any]:
    from .backfill import apply_chunk

    summary, _ = apply_chunk(lines, offset=offset)
    return summary


def _invoker(function: str):
    def invoke(lines: list[str], offset: int) -> dict[str, Any]:
        from opsdeck.aws import client
        from opsdeck_cli.main import CommandError

        payload = json.dumps({"changes": lines, "offset": offset}).encode()
        try:
            response = client("lambda").invoke(
                FunctionName=function, InvocationType="RequestResponse", Payload=payload
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            raise CommandError(f"invoking {function} failed: {code}") from None
        body = response["Payload"].read()
        if response.get("FunctionError"):
            try:
                message = json.loads(body).get("errorMessage", "")
            except ValueError:
                message = body[:200].decode(errors="replace")
            raise CommandError(f"{function} failed at line {offset + 1}: {message}")
        return json.loads(body)

    return invoke


# ---------------------------------------------------------------------- generate


def run_generate(args: argparse.Namespace) -> int:
    import random

    from opsdeck_cli.main import CommandError

    from .simulator import OltpSimulator, deliver, jsonl

    if args.orders < 1:
        raise CommandError("--orders must be positive")
    sim = OltpSimulator(seed=args.seed)
    events = sim.run(args.orders)
    if args.snapshot:
        out = sim.snapshot()
    else:
        out = deliver(events, rng=random.Random(args.seed), duplicate_rate=args.duplicates)  # noqa: S311
    target: TextIO = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        target.writelines(jsonl(out))
    finally:
        if target is not sys.stdout:
            target.close()
    return 0
