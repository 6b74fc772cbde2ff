"""Run benchmarks and print one JSON object per line."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

import bench


def available() -> list[str]:
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="opsdeck benchmarks (JSON lines)")
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})"
    )
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"python -m bench: error: unknown benchmark(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "bench": "machine",
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": __import__("os").cpu_count(),
                "date": time.strftime("%Y-%m-%d"),
            }
        ),
        flush=True,
    )
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        for result in module.run():
            print(json.dumps({"bench": name, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "layers/common/python")]
    sys.exit(main())
