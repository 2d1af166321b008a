"""Where a lazy read's time goes, phase by phase: `bench lazy`'s 2-of-22 first read, pyarrow's S3 reader beside it.

    python -m bench.lazy_phases [--runtime NAME=PATH ...] --size 1GiB --repeats 12

One ``bench lazy`` stack and bundle (``bench.lazy._prepare``). Each runtime's functions are wrapped (wall time from the
``catalog()`` call; CPU by ``time.thread_time`` inside the fetch threads), each read is a first one (``_fresh``,
untimed), and the runtimes and pyarrow's S3FileSystem on the same 2 columns alternate in a turning order. Prints
each read to stderr and the medians per phase as JSON; process CPU and SeaweedFS's CPU (from /proc) per read too.
Sums over the fetch threads overlap in time: they say where the threads wait, not how long the read took.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import parse_size
from bench.lazy import COLUMNS, _fresh, _lazy, _prepare, _pyarrow_s3
from bench.lazy_ab import _weed_cpu
from bench.service import label as size_label
from bench.service import stack

# (owner attribute path, phase, with thread CPU): the runtime's functions each phase is timed by.
_WRAPPED = (
    ("signed.ask", "ask", False),
    ("lazy._digests", "sidecar", False),
    ("lazy._Blocks.ensure", "ensure", False),
    ("lazy._Blocks._fetch_run", "range", True),
    ("lazy._Blocks._store", "store", True),
    ("lazy._Blocks._write", "write", True),
    ("lazy.read_into", "body", True),
    ("signed.Source.open", "open", False),
    ("lazy._Blocks._plan", "plan", False),
    ("lazy.finish", "finish", False),
)


class _Recorder:
    """Phase events of the read in progress: (phase, start, end, thread CPU), seconds from the read's start."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, float, float]] = []
        self.lock = threading.Lock()
        self.t0 = 0.0

    def wrap(self, rt: Any, dotted: str, phase: str, cpu: bool) -> None:
        *path, name = dotted.split(".")
        owner = functools.reduce(getattr, path, rt)
        real = getattr(owner, name)

        @functools.wraps(real)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, used = time.perf_counter(), time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                spent = time.thread_time() - used if cpu else 0.0
                with self.lock:
                    self.events.append((phase, start - self.t0, time.perf_counter() - self.t0, spent))

        setattr(owner, name, timed)

    def phases(self, total: float) -> dict[str, float]:
        by: dict[str, list[tuple[float, float, float]]] = {}
        for phase, start, end, cpu in self.events:
            by.setdefault(phase, []).append((start, end, cpu))

        def wall(phase: str) -> float:
            return sum(end - start for start, end, _ in by.get(phase, []))

        def cpu(phase: str) -> float:
            return sum(c for *_, c in by.get(phase, []))

        ensures, finish = by["ensure"], by["finish"][0]
        return {
            "before_first_range": ensures[0][0],
            "ask": wall("ask"),
            "sidecar": wall("sidecar"),
            "footer_with_ask": ensures[0][1] - ensures[0][0],
            # Between: the 8-byte footer length and the rest of the footer (both in the first range as a rule).
            "footer_rest_parse_and_plan": ensures[-1][0] - ensures[0][1],
            "fetch": ensures[-1][1] - ensures[-1][0],
            "decode": finish[0] - ensures[-1][1],
            "ranges": len(by["range"]),
            "threads: range wall": wall("range"),
            "threads: range CPU": cpu("range"),
            "threads: request to status line": wall("open"),
            "threads: body reads wall": wall("body"),
            "threads: body reads CPU": cpu("body"),
            "threads: sha256 CPU": cpu("store") - cpu("write"),
            "threads: writes wall": wall("write"),
            "threads: writes CPU": cpu("write"),
            "total": total,
        }


def main() -> None:
    from tests.helpers import RUNTIME_DIR, load_runtime_package

    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", action="append", default=[], help="NAME=PATH of a runtime package")
    parser.add_argument("--size", default="1GiB", help="64MiB, 1GiB, ...")
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lazy-phases-"))
    size = parse_size(args.size)
    recorder = _Recorder()
    with stack(workdir / "stack") as st:
        paths = {n: Path(p) for n, p in (r.split("=", 1) for r in args.runtime)} or {"main": RUNTIME_DIR}
        runtimes = {name: load_runtime_package(f"nbpack_runtime_phases_{name}", path) for name, path in paths.items()}
        for rt in runtimes.values():
            for dotted, phase, cpu in _WRAPPED:
                recorder.wrap(rt, dotted, phase, cpu)
        work = workdir / f"lazy-{size_label(size)}"
        work.mkdir(parents=True, exist_ok=True)
        case = _prepare(st, size, work, lambda m: print(m, file=sys.stderr))
        cache = work / "cache"
        reads: dict[str, Callable[[], int]] = {
            name: functools.partial(_lazy, rt, case, case["files"], cache, COLUMNS) for name, rt in runtimes.items()
        }
        reads["pyarrow_s3"] = functools.partial(_pyarrow_s3, st, case, COLUMNS)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in reads}
        order = list(reads)
        for r in range(args.repeats):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                if name in runtimes:
                    _fresh(runtimes[name], cache)  # untimed: a first read
                recorder.events.clear()
                start, used, weed = time.perf_counter(), time.process_time(), _weed_cpu(st)
                recorder.t0 = start
                reads[name]()
                total = time.perf_counter() - start
                row = recorder.phases(total) if name in runtimes else {"total": total}
                row.update({"process CPU": time.process_time() - used, "SeaweedFS CPU": _weed_cpu(st) - weed})
                rows[name].append(row)
                print(name, json.dumps({k: round(v, 4) for k, v in row.items()}), file=sys.stderr)
    print(
        json.dumps(
            {n: {k: round(statistics.median(r[k] for r in rs), 4) for k in rs[0]} for n, rs in rows.items()}, indent=1
        )
    )


if __name__ == "__main__":
    main()
