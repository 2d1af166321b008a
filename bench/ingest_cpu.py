"""Where a concurrent ingest round's CPU goes, by process: the gunicorn worker(s), SeaweedFS and the client (this
process: the runtime's ``upload()`` threads, or boto3's PUT threads), per return, for the runtime's upload ×20 and
boto3's ``put_object`` ×20 of the same files, alternating, on ``bench ingest``'s stack.

On the 2-core bench machine every process shares the same cores, so a round's throughput ratio follows the ratio of
these CPU totals (boto3's / nbpack's) whatever else runs: the figures survive a loaded machine better than the wall
times do (bench/README.md, "Ingest: workers, body reads, obstore").

``python -m bench.ingest_cpu --size 1MB,64MB --rounds 8 [--workers N --threads M] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import ingest, service
from bench.harness import parse_size

COUNT = ingest.CONCURRENT


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    from tests.fixtures.service import gunicorn_workers  # the service side lives with the test fixtures

    p = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__)
    p.add_argument("--size", default="1MB,64MB", help="bytes per round (20 returns of size/20 each)")
    p.add_argument("--rounds", type=int, default=8, help="timed rounds per side (after one untimed)")
    p.add_argument("--workers", type=int, default=service.README_DEPLOYMENT["workers"])
    p.add_argument("--threads", type=int, default=service.README_DEPLOYMENT["threads"])
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args(argv)
    service.DEPLOYMENT.update(workers=args.workers, threads=args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nbpack-ingest-cpu-"))
    sizes = [parse_size(s, "bytes") for s in args.size.split(",") if s.strip()]
    # The runtime prints progress on stdout: kept out of the report.
    with service.stack(work / "stack") as st, contextlib.redirect_stdout(io.StringIO()):
        bid, folder, _endpoint, _token = ingest._stored_bundle(st, work)
        rt = ingest._runtime(folder)
        workers, weed = gunicorn_workers(st.master_pid), st.weed.proc.pid
        for size in sizes:
            paths = ingest.make_returns(folder, work / f"ingest-cpu-{size}", size // COUNT, COUNT)
            sides = {
                "runtime": lambda path: ingest._runtime_upload(rt, path),
                "boto3": lambda path: ingest._put(st, path),
            }
            seen: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in sides}
            for r in range(args.rounds + 1):
                for name in ("runtime", "boto3") if r % 2 else ("boto3", "runtime"):
                    ingest._forget_returns(st, bid)
                    before = (sum(map(service.cpu_seconds, workers)), service.cpu_seconds(weed), _own_cpu())
                    t0 = time.perf_counter()
                    ingest._all(sides[name], paths)
                    wall = time.perf_counter() - t0
                    after = (sum(map(service.cpu_seconds, workers)), service.cpu_seconds(weed), _own_cpu())
                    if r:  # the first round warms connections and caches
                        ms = [(b - a) * 1000 / COUNT for a, b in zip(before, after, strict=True)]
                        seen[name].append((wall, *ms))
            label = service.label(size)
            for name, runs in seen.items():
                wall, worker, weed_ms, client = (statistics.median(run[i] for run in runs) for i in range(4))
                print(
                    f"{label} x{COUNT} {name:7s}: wall {wall:.3f} s; CPU ms per return: worker {worker:.1f}, "
                    f"SeaweedFS {weed_ms:.1f}, client {client:.1f}, total {worker + weed_ms + client:.1f}",
                    file=sys.stderr,
                )
            ratios = [b[0] / a[0] for a, b in zip(seen["runtime"], seen["boto3"], strict=True)]
            print(
                f"{label} x{COUNT}: throughput ratio per round {' '.join(f'{x:.2f}' for x in ratios)}, "
                f"median {statistics.median(ratios):.2f} (load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
