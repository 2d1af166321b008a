"""Command line: ``python -m bench {NAME|all} --size 1e4,1e5 [--repeats N] [--json] [--workdir DIR]``.

NAME: build, load, clone (harness), download, ingest, launch (own runners: a service or a hub).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from bench import benchmarks, runners, service
from bench.harness import Benchmark, Report, parse_size, run_benchmark


def _sizes(text: str, bench_unit: str, small: list[int], default: list[int]) -> list[int]:
    if text == "small":
        return small
    if text == "default":
        return default
    return [parse_size(part, bench_unit) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark(s) and print the report table (or JSON)."""
    known: dict = {**benchmarks(), **runners()}
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("name", choices=[*known, "all"])
    p.add_argument(
        "--size",
        default="default",
        help="comma list: 1e4,1e5 / 100000 / 10MB,1GiB; or 'small' / 'default' (per benchmark)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (alternating)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--workdir", type=Path, help="keep prepared data here (default: a temporary folder)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    deploy = service.README_DEPLOYMENT
    p.add_argument("--workers", type=int, default=deploy["workers"], help="service benchmarks: gunicorn workers")
    p.add_argument("--threads", type=int, default=deploy["threads"], help="service benchmarks: gthreads per worker")
    args = p.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        p.error("--workers and --threads must be at least 1")
    service.DEPLOYMENT.update(workers=args.workers, threads=args.threads)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    chosen = list(known.values()) if args.name == "all" else [known[args.name]]
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    report = Report(command="python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv))
    with tempfile.TemporaryDirectory(prefix="nbpack-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for bench in chosen:
            try:
                sizes = _sizes(args.size, bench.unit, bench.small, bench.default)
            except ValueError as err:
                p.error(str(err))
            if isinstance(bench, Benchmark):
                report.rows += run_benchmark(bench, sizes, args.repeats, workdir, say)
            else:  # a bench.service.Runner: its own SeaweedFS/service/hub, rows in the same table
                report.rows += bench.run(sizes, args.repeats, workdir, say)
    print(report.to_json() if args.json else report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
