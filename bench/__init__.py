"""Benchmarks: ``python -m bench [NAME ...]`` (``make bench``).

Each ``bench/bench_<name>.py`` module has ``run() -> Iterable[dict]``; every dict is printed
as one JSON line ``{"bench": ..., "metric": ..., "value": ..., "unit": ..., ...}`` so results
can be collected by machines. Figures are recorded in BENCHMARKS.md with date and machine.
"""
