"""nbpack benchmarks: ``python -m bench NAME --size ...``; each module in ``MODULES`` defines ``BENCHMARK``."""

from __future__ import annotations

import importlib

from bench.harness import Benchmark

__all__ = ["MODULES", "benchmarks"]

# Add a benchmark: write bench/<name>.py with a module-level BENCHMARK = harness.Benchmark(...), list it here.
MODULES = ("bench.build", "bench.load")


def benchmarks() -> dict[str, Benchmark]:
    """Every registered benchmark by name, in registration order."""
    found = {}
    for module in MODULES:
        bench = importlib.import_module(module).BENCHMARK
        found[bench.name] = bench
    return found
