"""nbpack benchmarks: ``python -m bench NAME --size ...``; each module in ``MODULES`` defines ``BENCHMARK``."""

from __future__ import annotations

import importlib

from bench.harness import Benchmark

__all__ = ["MODULES", "RUNNERS", "benchmarks", "runners"]

# Add a benchmark: write bench/<name>.py with a module-level BENCHMARK = harness.Benchmark(...), list it here.
MODULES = ("bench.build", "bench.load", "bench.clone")
# Benchmarks with their own runner (a long-lived service or hub whose RSS/timing is the point): module-level
# RUNNER = bench.service.Runner(...).
RUNNERS = ("bench.download", "bench.ingest", "bench.launch", "bench.open_size")


def benchmarks() -> dict[str, Benchmark]:
    """Every registered harness benchmark by name, in registration order."""
    found = {}
    for module in MODULES:
        bench = importlib.import_module(module).BENCHMARK
        found[bench.name] = bench
    return found


def runners() -> dict:
    """Every benchmark with its own runner (``bench.service.Runner``) by name."""
    found = {}
    for module in RUNNERS:
        runner = importlib.import_module(module).RUNNER
        found[runner.name] = runner
    return found
