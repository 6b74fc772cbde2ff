"""Before/after of the reaction toggle, interleaved: ``python -m bench.snacks_ab BEFORE AFTER``.

BEFORE and AFTER are two source trees (e.g. ``git archive <commit> | tar -x -C /tmp/before``, with
this tree's ``bench/`` copied in). Each gets a worker process (``bench_snacks.toggle_worker``:
its own database, its own Redis database — 13 and 15 — through ``BENCH_SNACKS_REDIS_DB``); the
workers then take turns, ``BENCH_AB_BLOCK`` (50) toggles at a time, ``BENCH_AB_ROUNDS`` (40)
rounds each, the first of each pair alternating. Prints one JSON line per tree and the ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.support import percentiles


def _worker(tree: str, redis_db: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "BENCH_SNACKS_REDIS_DB": str(redis_db),
        "PYTHONPATH": f"{tree}:{tree}/layers/common/python",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bench.bench_snacks import toggle_worker; toggle_worker()"],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(proc.stdout.readline())
    print(json.dumps({"bench": "snacks_ab", "tree": tree, **ready}), flush=True)
    return proc


def main(before: str, after: str) -> None:
    block = int(os.environ.get("BENCH_AB_BLOCK", 50))
    rounds = int(os.environ.get("BENCH_AB_ROUNDS", 40))
    workers = {"before": _worker(before, 13), "after": _worker(after, 15)}
    samples: dict[str, list[float]] = {"before": [], "after": []}
    started = time.time()
    for r in range(rounds):
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            proc = workers[name]
            proc.stdin.write(f"{block}\n")
            proc.stdin.flush()
            samples[name] += json.loads(proc.stdout.readline())
    for proc in workers.values():
        proc.stdin.close()
        proc.wait(timeout=60)
    results = {}
    for name, values in samples.items():
        ms = {k.replace("_us", "_ms"): round(v / 1000, 3) for k, v in percentiles(values).items()}
        results[name] = ms
        print(
            json.dumps(
                {
                    "bench": "snacks_ab",
                    "metric": "latency",
                    "subject": f"reaction toggle via Lambda handler ({name})",
                    "tree": before if name == "before" else after,
                    "requests": len(values),
                    **ms,
                    "unit": "ms",
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "bench": "snacks_ab",
                "metric": "after/before",
                "p50": round(results["after"]["p50_ms"] / results["before"]["p50_ms"], 3),
                "p95": round(results["after"]["p95_ms"] / results["before"]["p95_ms"], 3),
                "wall_s": round(time.time() - started, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
