"""Before/after, interleaved: ``python -m bench.snacks_ab toggle|stats BEFORE AFTER``.

BEFORE and AFTER are two source trees (e.g. ``git archive <commit> | tar -x -C /tmp/before``, with
this tree's ``bench/`` copied in). Each gets a worker process (``bench_snacks.toggle_worker`` or
``stats_worker``: its own database, its own Redis database — 11 and 12 — through
``BENCH_SNACKS_REDIS_DB``); the workers then take turns, ``BENCH_AB_BLOCK`` (50 toggles, 10
statistics reads) requests at a time, ``BENCH_AB_ROUNDS`` (40) rounds per mode, the first of each
pair alternating. Statistics have two modes (``uncached``, ``mixed``: see ``bench_snacks._Stats``).
Prints one JSON line per tree and mode, and the ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.support import percentiles


def _worker(tree: str, redis_db: int, case: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "BENCH_SNACKS_REDIS_DB": str(redis_db),
        "PYTHONPATH": f"{tree}:{tree}/layers/common/python",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from bench.bench_snacks import {case}_worker; {case}_worker()"],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(proc.stdout.readline())
    print(json.dumps({"bench": "snacks_ab", "tree": tree, **ready}), flush=True)
    return proc


def main(case: str, before: str, after: str) -> None:
    modes = ["toggle"] if case == "toggle" else ["uncached", "mixed"]
    block = int(os.environ.get("BENCH_AB_BLOCK", 50 if case == "toggle" else 10))
    rounds = int(os.environ.get("BENCH_AB_ROUNDS", 40))
    workers = {"before": _worker(before, 11, case), "after": _worker(after, 12, case)}
    samples = {(name, mode): [] for name in workers for mode in modes}
    started = time.time()
    for mode in modes:
        for r in range(rounds):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                proc = workers[name]
                proc.stdin.write(f"{mode} {block}\n")
                proc.stdin.flush()
                samples[name, mode] += json.loads(proc.stdout.readline())
    for proc in workers.values():
        proc.stdin.close()
        proc.wait(timeout=120)
    results = {}
    for (name, mode), values in samples.items():
        ms = {k.replace("_us", "_ms"): round(v / 1000, 3) for k, v in percentiles(values).items()}
        results[name, mode] = ms
        print(
            json.dumps(
                {
                    "bench": "snacks_ab",
                    "metric": "latency",
                    "subject": f"{case} {mode} via Lambda handler ({name})",
                    "tree": before if name == "before" else after,
                    "requests": len(values),
                    **ms,
                    "unit": "ms",
                }
            ),
            flush=True,
        )
    for mode in modes:
        a, b = results["after", mode], results["before", mode]
        print(
            json.dumps(
                {
                    "bench": "snacks_ab",
                    "metric": "after/before",
                    "mode": mode,
                    "p50": round(a["p50_ms"] / b["p50_ms"], 3),
                    "p95": round(a["p95_ms"] / b["p95_ms"], 3),
                }
            ),
            flush=True,
        )
    print(json.dumps({"bench": "snacks_ab", "wall_s": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
