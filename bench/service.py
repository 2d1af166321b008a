"""Shared parts of the service benchmarks (download, ingest, launch): a SeaweedFS + gunicorn stack, RSS sampling.

These benchmarks are not ``harness.Benchmark``s: the figure that matters is the long-lived gunicorn worker's
RSS, not a fresh child's. Each one is a ``Runner`` whose ``run(sizes, repeats, workdir, say)`` returns
``harness.Row``s, so ``python -m bench NAME`` prints them in the same table as the others.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Row, judge

__all__ = [
    "Runner",
    "Stack",
    "RssSampler",
    "stack",
    "cpu_seconds",
    "worker_rss_kib",
    "time_row",
    "throughput_ratio",
    "mib",
    "label",
]


@dataclass
class Runner:
    """A benchmark with its own runner (sizes as in ``harness.Benchmark``)."""

    name: str
    description: str
    unit: str
    small: list[int]
    default: list[int]
    run: Callable[[list[int], int, Path, Callable[[str], None]], list[Row]]


def worker_rss_kib(master_pid: int) -> int:
    """Summed RSS (KiB) of a gunicorn master's worker processes."""
    from tests.fixtures.service import gunicorn_rss_kib  # the service side lives with the test fixtures

    return gunicorn_rss_kib(master_pid, include_master=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has spent (from /proc): what a side costs the machine, beside its
    wall time (SeaweedFS, the gunicorn worker)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib: int) -> float:
    """KiB → MiB."""
    return kib / 1024


@dataclass
class RssSampler:
    """Samples a gunicorn master's workers' RSS every 50 ms between ``start()`` and ``stop()``."""

    master_pid: int
    before: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        """Record the current RSS and start sampling."""
        self.before = self.peak = worker_rss_kib(self.master_pid)
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.05):
                self.peak = max(self.peak, worker_rss_kib(self.master_pid))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop sampling; the growth (KiB) of peak over the starting RSS."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        return self.peak - self.before


@dataclass
class Stack:
    """A running SeaweedFS bucket and one gunicorn service storing there."""

    url: str
    api_key: str
    endpoint: str
    bucket: str
    prefix: str
    master_pid: int
    s3: Any
    service: Any
    weed: Any = None  # the SeaweedFS fixture (its ports, process): probes read chunk layouts and its CPU time


# The service's gunicorn processes: 1 worker with 8 gthreads, as README.md deploys it, unless ``python -m bench
# --workers N --threads M`` asks for another deployment (its rows then carry ``deployment_tag()``: another row, not
# the table's).
README_DEPLOYMENT = {"workers": 1, "threads": 8}
DEPLOYMENT = dict(README_DEPLOYMENT)


def deployment_tag() -> str:
    """``""`` for README.md's deployment, else ``"_w<workers>t<threads>"``, appended to the nbpack rows' names."""
    if DEPLOYMENT == README_DEPLOYMENT:
        return ""
    return f"_w{DEPLOYMENT['workers']}t{DEPLOYMENT['threads']}"


@contextlib.contextmanager
def stack(work: Path, **extra: str) -> Iterator[Stack]:
    """SeaweedFS (``weed mini``) + ``gunicorn wsgi:app`` (gthread; :data:`DEPLOYMENT`'s workers and threads) on S3."""
    import boto3
    from botocore.config import Config

    from tests.fixtures.seaweed import SeaweedFS
    from tests.fixtures.service import ServiceProcess, service_env

    weed = SeaweedFS(work / "seaweed")
    weed.start()
    svc = None
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    try:
        weed.create_bucket("bench")
        os.environ.update(
            AWS_ACCESS_KEY_ID=weed.access_key, AWS_SECRET_ACCESS_KEY=weed.secret_key, AWS_REGION="us-east-1"
        )
        api_key = secrets.token_urlsafe(16)
        env = service_env(
            "s3://bench/nbpack", api_key, cache_dir=str(work / "cache"), s3_endpoint=weed.endpoint, **extra
        )
        svc = ServiceProcess(
            env,
            work / "service.log",
            workers=DEPLOYMENT["workers"],
            threads=DEPLOYMENT["threads"],
        ).start()
        # The baseline client is configured like the service's own (path style, same retries).
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=weed.endpoint,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        yield Stack(svc.url, api_key, weed.endpoint, "bench", "nbpack", svc.proc.pid, s3, svc, weed)
    finally:
        if svc:
            svc.stop()
        weed.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def time_row(
    bench: str,
    label: str,
    variant: str,
    seconds: list[float],
    volume: int,
    *,
    rss_mib: float = float("nan"),
    compared: str | None = None,
    nbpack_median: float | None = None,
    max_ratio: float | None = None,
    extra_ok: bool = True,
    note: str = "",
) -> Row:
    """A report row from timed runs; a baseline row gets ``median(nbpack) / median(this)`` and the target."""
    med = statistics.median(seconds)
    row = Row(bench, label, variant, med, min(seconds), volume / med / 1e6, None, rss_mib, len(seconds), note=note)
    if compared and nbpack_median is not None:
        judge(row, compared, nbpack_median, max_ratio, extra_ok)
    return row


def throughput_ratio(min_throughput: float) -> float:
    """A throughput target (nbpack at least this fraction of the baseline's) as the time ratio the rows check."""
    return round(1 / min_throughput, 3)


def label(size: int) -> str:
    """A byte size as typed: 1MB, 64MB, 1GiB (decimal or binary, whichever is exact)."""
    for suffix, scale in (("GiB", 2**30), ("MiB", 2**20), ("GB", 10**9), ("MB", 10**6), ("KiB", 2**10), ("kB", 10**3)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{suffix}"
    return f"{size}B"
