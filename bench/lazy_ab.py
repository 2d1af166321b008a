"""A/B of copies of the runtime on one ``bench lazy`` stack: the first reads of ``bench.lazy``, alternating.

    python -m bench.lazy_ab --runtime base=OTHER/nbpack/runtime/nbpack_runtime --runtime new=RUNTIME_FOLDER

One SeaweedFS + service and one pushed bundle per size (``bench.lazy._prepare``); per round, in a turning order:
``2_of_22`` and ``first`` (the whole read) by each ``--runtime NAME=PATH`` (``NAME_…``; none given: this
checkout's, ``new_…``), each a first read in a fresh kernel (empty cache, no grant, no kept connection), and pyarrow's
S3FileSystem on the same 2 columns. Prints each run to stderr and the medians (s) with the ratios as JSON: the
runtimes meet the same stack, data and load, which separate ``bench lazy`` runs cannot promise.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import parse_size
from bench.lazy import COLUMNS, _fresh, _lazy, _prepare, _pyarrow_s3
from bench.service import cpu_seconds, stack
from bench.service import label as size_label


def _weed_cpu(st: Any) -> float:
    """SeaweedFS's CPU seconds so far: what serving a read costs the machine too."""
    return cpu_seconds(st.weed.proc.pid)


def main() -> None:
    from tests.helpers import RUNTIME_DIR, load_runtime_package

    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", action="append", default=[], help="NAME=PATH of another runtime package")
    parser.add_argument("--size", default="1GiB", help="comma-separated, e.g. 64MiB,1GiB")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--subset-only", action="store_true", help="no whole reads: 2 of 22 only, more repeats")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lazy-ab-"))
    out: dict[str, dict[str, float]] = {}
    with stack(workdir / "stack") as st:
        # Without --runtime: this checkout's alone (a smoke run); give it as new=PATH beside the others to compare.
        paths = {n: Path(p) for n, p in (r.split("=", 1) for r in args.runtime)} or {"new": RUNTIME_DIR}
        runtimes = {name: load_runtime_package(f"nbpack_runtime_ab_{name}", path) for name, path in paths.items()}
        for size in (parse_size(s) for s in args.size.split(",")):
            label = size_label(size)
            work = workdir / f"lazy-{label}"
            work.mkdir(parents=True, exist_ok=True)
            case = _prepare(st, size, work, lambda m: print(m, file=sys.stderr))
            cache = work / "cache"
            variants: dict[str, Callable[[], int]] = {
                "pyarrow_s3_2_of_22": functools.partial(_pyarrow_s3, st, case, COLUMNS)
            }
            resets: dict[str, Callable[[], None]] = {}
            for side, rt in runtimes.items():
                variants[f"{side}_2_of_22"] = functools.partial(_lazy, rt, case, case["files"], cache, COLUMNS)
                if not args.subset_only:
                    variants[f"{side}_first"] = functools.partial(_lazy, rt, case, case["files"], cache, None)
                # Untimed: an empty cache, no grant, no kept connection (bench.lazy._fresh).
                resets[f"{side}_2_of_22"] = resets[f"{side}_first"] = functools.partial(_fresh, rt, cache)
            bucket, key = case["plain"].split("/", 1)
            tail = st.s3.get_object(Bucket=bucket, Key=key, Range="bytes=-8")["Body"].read()
            print(f"{label}: footer {struct.unpack('<I', tail[:4])[0]} B", file=sys.stderr)
            times: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            weed: dict[str, list[float]] = {name: [] for name in variants}
            order = list(variants)
            for r in range(args.repeats):
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    resets.get(name, lambda: None)()
                    t0, c0, w0 = time.perf_counter(), time.process_time(), _weed_cpu(st)
                    variants[name]()
                    times[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
                    weed[name].append(_weed_cpu(st) - w0)
                    print(
                        f"{label} {name}: {times[name][-1]:.3f} s, {cpu[name][-1]:.3f} s CPU, "
                        f"SeaweedFS {weed[name][-1]:.2f} s CPU",
                        file=sys.stderr,
                    )
            med = {name: round(statistics.median(t), 4) for name, t in times.items()}
            med.update({f"{name} CPU": round(statistics.median(t), 4) for name, t in cpu.items()})
            med.update({f"{name} SeaweedFS CPU": round(statistics.median(t), 3) for name, t in weed.items()})
            for side in (s for s in runtimes if not args.subset_only):
                med[f"{side}_2_of_22 / {side}_first"] = round(med[f"{side}_2_of_22"] / med[f"{side}_first"], 3)
            for side in runtimes:
                med[f"{side}_2_of_22 / pyarrow"] = round(med[f"{side}_2_of_22"] / med["pyarrow_s3_2_of_22"], 3)
            out[label] = med
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
