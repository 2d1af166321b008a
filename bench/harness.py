"""Benchmark harness: run each variant in a fresh process, alternate nbpack and baselines, report medians.

A benchmark is a ``Benchmark``: a ``prepare(size, workdir) -> Case`` that makes its data once per size, and
``Variant``s. A variant names a function ``"module:function"`` taking the case params (a JSON dict) and
returning a zero-argument callable: everything before the return is untimed setup, the callable is the
timed work (it may return a callable of figures, ``{"folder_MB": 2.1}``, taken after the clock stops).
Each repeat of each variant runs in its own ``python`` process so peak RSS is per path and no cache or
import is shared between sides; variants are interleaved (order rotated every round) so load from other
processes on the machine hits both sides alike.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "Variant",
    "Benchmark",
    "Sample",
    "Row",
    "Report",
    "measure",
    "run_variant",
    "run_benchmark",
    "parse_size",
    "judge",
]

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 1800.0


@dataclass
class Case:
    """One size of one benchmark, prepared on disk: params for the variants and the volume for throughput."""

    size: int
    params: dict[str, Any]
    bytes: int
    rows: int | None = None


@dataclass
class Variant:
    """One way of doing the work; a baseline names the nbpack variant it is compared with and the target."""

    name: str
    func: str
    baseline_of: str | None = None
    max_ratio: float | None = None
    max_size: int | None = None
    note: str = ""
    # Upper bounds on figures the variant reports ({"folder_MB": 3.2}): met only when every median is within.
    figure_max: dict[str, float] = field(default_factory=dict)
    # Also a memory target: the nbpack variant's peak RSS at most this many times the baseline's.
    max_rss_ratio: float | None = None


@dataclass
class Benchmark:
    """A named benchmark: its sizes, how to prepare a case, and its variants."""

    name: str
    description: str
    unit: str
    small: list[int]
    default: list[int]
    prepare: Callable[[int, Path], Case]
    variants: list[Variant]


@dataclass
class Sample:
    """Timed repeats of one variant: seconds per run and peak RSS (MiB) per run."""

    seconds: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)
    figures: dict[str, list[float]] = field(default_factory=dict)
    last: Any = None  # what the timed function returned last time

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


@dataclass
class Row:
    """One reported line: a (benchmark, size, variant) with its figures and, for baselines, the ratio."""

    benchmark: str
    size: str
    variant: str
    median_s: float
    min_s: float
    mb_per_s: float
    rows_per_s: float | None
    peak_rss_mib: float
    repeats: int
    ratio: float | None = None
    compared: str | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""
    figures: dict[str, float] = field(default_factory=dict)


def parse_size(text: str, unit: str = "rows") -> int:
    """``1e5``, ``100000``, ``10k``, ``10MB``, ``1GiB`` → an int (bytes for byte suffixes)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not m:
        raise ValueError(f"size {text!r} is not a number like 1e5, 100000, 10MB or 1GiB")
    scale = {
        "": 1,
        "k": 10**3,
        "m": 10**6,
        "kb": 10**3,
        "mb": 10**6,
        "gb": 10**9,
        "kib": 2**10,
        "mib": 2**20,
        "gib": 2**30,
        "b": 1,
    }.get(m.group(2))
    if scale is None:
        raise ValueError(f"size {text!r}: unknown suffix {m.group(2)!r} (use k, MB, MiB, GB, GiB)")
    return int(float(m.group(1)) * scale)


def format_size(size: int, unit: str) -> str:
    """A short label: 1e5 rows, 10MiB."""
    if unit == "bytes":
        for suffix, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if size >= scale and size % scale == 0:
                return f"{size // scale}{suffix}"
        return f"{size}B"
    exp = len(str(size)) - 1
    return f"1e{exp}" if size == 10**exp else str(size)


def measure(fn: Callable[[], Any], repeats: int) -> Sample:
    """Time ``fn`` ``repeats`` times in this process: the one timing loop (a child process times one repeat)."""
    sample = Sample()
    for _ in range(repeats):
        start = time.perf_counter()
        sample.last = fn()
        sample.seconds.append(time.perf_counter() - start)
        sample.peak_rss_mib.append(_peak_rss_mib())
    return sample


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux: the high-water mark of this process since it started.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: Variant, case: Case, timeout: float = CHILD_TIMEOUT) -> tuple[float, float, dict[str, float]]:
    """Run one repeat of ``variant`` in a fresh Python process; returns (seconds, peak RSS MiB, its figures)."""
    with tempfile.TemporaryDirectory(prefix="nbpack-bench-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "bench.harness", variant.func, json.dumps(case.params), str(out), tmp]
        proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"variant {variant.name} failed (exit {proc.returncode}): " + " | ".join(tail))
        result = json.loads(out.read_text())
    return result["seconds"], result["peak_rss_mib"], result.get("figures", {})


def run_benchmark(
    bench: Benchmark, sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None
) -> list[Row]:
    """Prepare each size, run all variants alternately ``repeats`` times, and return the report rows."""
    rows: list[Row] = []
    for size in sizes:
        label = format_size(size, bench.unit)
        case_dir = workdir / f"{bench.name}-{label}"
        case_dir.mkdir(parents=True, exist_ok=True)
        say(f"{bench.name} {label}: preparing")
        case = bench.prepare(size, case_dir)
        active = [v for v in bench.variants if v.max_size is None or size <= v.max_size]
        samples = {v.name: Sample() for v in active}
        failures: dict[str, str] = {}
        for r in range(repeats):
            # Rotate the order each round so neither side always runs first (warm caches, neighbours' load).
            order = active[r % len(active) :] + active[: r % len(active)]
            for v in order:
                try:
                    seconds, rss, figures = run_variant(v, case)
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    # One failed run (e.g. a neighbour's half-saved edit) must not throw away the others.
                    failures.setdefault(v.name, str(err)[:160])
                    say(f"{bench.name} {label} round {r + 1}/{repeats}: {v.name} FAILED: {err}")
                    continue
                samples[v.name].seconds.append(seconds)
                samples[v.name].peak_rss_mib.append(rss)
                for key, value in figures.items():
                    samples[v.name].figures.setdefault(key, []).append(value)
                say(f"{bench.name} {label} round {r + 1}/{repeats}: {v.name} {seconds:.3f}s")
        for v in bench.variants:
            if v not in active:
                rows.append(
                    _no_row(bench.name, label, v.name, f"skipped above {format_size(v.max_size or 0, bench.unit)}")
                )
            elif samples[v.name].seconds:
                rows.append(_row(bench, label, case, v, samples))
            else:
                rows.append(_no_row(bench.name, label, v.name, f"failed: {failures.get(v.name, '')}"))
    return rows


def _no_row(bench: str, label: str, variant: str, note: str) -> Row:
    nan = float("nan")
    return Row(bench, label, variant, nan, nan, nan, None, nan, 0, note=note)


def judge(row: Row, compared: str, nbpack_median: float, max_ratio: float | None, extra_ok: bool = True) -> Row:
    """Give a baseline row its ratio ``median(nbpack) / median(baseline)`` and, with a target, whether it is met."""
    row.ratio = nbpack_median / row.median_s
    row.compared = compared
    if max_ratio is not None:
        row.target = f"<={max_ratio:g}x"
        row.met = row.ratio <= max_ratio and extra_ok
    return row


def _row(bench: Benchmark, label: str, case: Case, v: Variant, samples: dict[str, Sample]) -> Row:
    s = samples[v.name]
    med = s.median
    row = Row(
        bench.name,
        label,
        v.name,
        med,
        s.best,
        case.bytes / med / 1e6,
        case.rows / med if case.rows else None,
        max(s.peak_rss_mib),
        len(s.seconds),
        note=v.note,
        figures={k: statistics.median(vals) for k, vals in s.figures.items()},
    )
    if row.figures:
        row.note = " ".join([*(f"{k} {val:.4g}" for k, val in row.figures.items()), row.note]).strip()
    if v.figure_max and not v.baseline_of:
        row.target = ",".join(f"{k}<={lim:g}" for k, lim in v.figure_max.items())
        row.met = all(k in row.figures and row.figures[k] <= lim for k, lim in v.figure_max.items())
    nbpack = samples.get(v.baseline_of or "", Sample())
    if v.baseline_of and nbpack.seconds:
        rss_ok = True
        if v.max_rss_ratio is not None:
            rss = max(nbpack.peak_rss_mib) / row.peak_rss_mib
            rss_ok = rss <= v.max_rss_ratio
            row.note = f"{row.note}; peak RSS {rss:.2f}x (<={v.max_rss_ratio:g}x)".lstrip("; ")
        judge(row, v.baseline_of, nbpack.median, v.max_ratio, rss_ok)
    return row


@dataclass
class Report:
    """Rows of one run, printed as a fixed-width table or as JSON."""

    rows: list[Row] = field(default_factory=list)
    command: str = ""

    def table(self) -> str:
        """The fixed-width text table."""
        head = (
            f"{'benchmark':<10} {'size':>6} {'variant':<22} {'median s':>9} {'min s':>8} {'MB/s':>8} "
            f"{'Mrows/s':>8} {'RSS MiB':>8} {'ratio':>7}  {'vs':<16} {'target':<8} met"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            rate = f"{r.rows_per_s / 1e6:8.2f}" if r.rows_per_s else f"{'-':>8}"
            ratio = f"{r.ratio:7.2f}" if r.ratio is not None else f"{'':>7}"
            met = "" if r.met is None else ("yes" if r.met else "NO")
            lines.append(
                f"{r.benchmark:<10} {r.size:>6} {r.variant:<22} {r.median_s:9.3f} {r.min_s:8.3f} "
                f"{r.mb_per_s:8.1f} {rate} {r.peak_rss_mib:8.0f} {ratio}  {r.compared or '':<16} "
                f"{r.target or '':<8} {met}{'  ' + r.note if r.note else ''}"
            )
        lines.append(
            "ratio = median(nbpack variant in 'vs') / median(this baseline); "
            "MB/s over the in-memory (Arrow) size of the data"
        )
        return "\n".join(lines)

    def to_json(self) -> str:
        """The rows as a JSON document."""
        doc = {
            "command": self.command,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "rows": [{k: _finite(v) for k, v in asdict(r).items()} for r in self.rows],
        }
        return json.dumps(doc, indent=1, allow_nan=False)


def _finite(value: Any) -> Any:
    # JSON has no NaN: a skipped variant's figures become null.
    return None if isinstance(value, float) and value != value else value


def _child(func: str, params_json: str, out: str, workdir: str) -> None:
    """Child-process side of ``run_variant``: untimed setup, timed call, write seconds and peak RSS."""
    module, _, name = func.partition(":")
    params = json.loads(params_json)
    params["tmp"] = workdir
    work = getattr(importlib.import_module(module), name)(params)
    sample = measure(work, 1)
    # The timed work may return a callable giving figures of its own (a folder's size), taken after the clock stops.
    figures = {k: float(v) for k, v in sample.last().items()} if callable(sample.last) else {}
    doc = {"seconds": sample.best, "peak_rss_mib": max(sample.peak_rss_mib), "figures": figures}
    Path(out).write_text(json.dumps(doc))


if __name__ == "__main__":
    _child(*sys.argv[1:5])
