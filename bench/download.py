"""Download throughput and worker memory: a bundle through the service against boto3 from the same object.

``python -m bench.download --size 1GiB`` starts its own SeaweedFS and one gunicorn service, stores a bundle of
that size (a random-float64 catalog, nearly incompressible), then times ``GET /b/<bid>/download`` and a direct
boto3 ``get_object`` of ``bundles/<bid>/bundle.zip``, alternating, while sampling the gunicorn workers' RSS.
It is not a ``harness.Benchmark``: the harness runs each variant in a fresh child and reports *that* process's
peak RSS, while the figure that matters here is the long-lived service worker's.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["big_bundle", "measure", "worker_rss_kib", "main"]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def worker_rss_kib(master_pid: int) -> int:
    """Summed RSS (KiB) of a gunicorn master's worker processes."""
    return sum(_rss_kib(p) for p in _children(master_pid))


def big_bundle(path: Path, size: int, workdir: Path) -> None:
    """Build a bundle whose one catalog is ``size`` bytes of random float64, written in 8 MiB batches."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nbpack.bundle import BuildSpec, CatalogInput, build_bundle

    rng = np.random.default_rng(0)
    parquet = workdir / "big.parquet"
    batch_rows = 1 << 20
    schema = pa.schema([("x", pa.float64())])
    with pq.ParquetWriter(parquet, schema, compression="none") as writer:
        for _ in range(max(1, size // (8 * batch_rows))):
            writer.write_table(pa.table({"x": rng.random(batch_rows)}, schema=schema))
    build_bundle(BuildSpec(title="Big", catalogs=[CatalogInput("big", parquet)]), path)


def _drain(read: Callable[[int], bytes]) -> int:
    n = 0
    while chunk := read(1 << 20):
        n += len(chunk)
    return n


def measure(download_url: str, s3: Any, bucket: str, key: str, master_pid: int, repeats: int = 3) -> dict:
    """Time service and boto3 downloads alternately; MB/s (best run), their ratio and worker RSS in MiB."""
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    before = worker_rss_kib(master_pid)
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], worker_rss_kib(master_pid))

    def via_service() -> int:
        with urllib.request.urlopen(download_url, timeout=600) as resp:
            return _drain(resp.read)

    def via_boto3() -> int:
        return _drain(s3.get_object(Bucket=bucket, Key=key)["Body"].read)

    times: dict[str, list[float]] = {"service": [], "boto3": []}
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(repeats):
            for name, fn in (("service", via_service), ("boto3", via_boto3)):
                t0 = time.perf_counter()
                got = fn()
                times[name].append(time.perf_counter() - t0)
                if got != size:
                    raise RuntimeError(f"{name} download gave {got} bytes, the object has {size}")
    finally:
        stop.set()
        sampler.join(timeout=5)
    after = worker_rss_kib(master_pid)
    mb = size / 1e6
    best = {k: min(v) for k, v in times.items()}
    return {"bytes": size, "service_MBps": round(mb / best["service"], 1), "boto3_MBps": round(mb / best["boto3"], 1),
            "ratio_service_to_boto3": round(best["boto3"] / best["service"], 3),
            "times_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "worker_rss_MiB": {"before": before // 1024, "peak": peak[0] // 1024, "after": after // 1024},
            "rss_growth_MiB": (peak[0] - before) // 1024}


def main(argv: list[str] | None = None) -> int:
    """Start SeaweedFS and a service, store a bundle of ``--size``, print the figures as JSON."""
    import os

    import boto3

    from bench.harness import parse_size
    from nbpack.client import Client
    from tests.fixtures.seaweed import SeaweedFS
    from tests.fixtures.service import ServiceProcess, service_env

    p = argparse.ArgumentParser(prog="python -m bench.download", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB", help="bundle size: 64MiB, 1GiB, ...")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    size = parse_size(args.size, "bytes")
    with tempfile.TemporaryDirectory(prefix="nbpack-bench-download-") as tmp:
        work = Path(tmp)
        weed = SeaweedFS(work / "seaweed")
        weed.start()
        svc = None
        try:
            weed.create_bucket("bench")
            os.environ.update(AWS_ACCESS_KEY_ID=weed.access_key, AWS_SECRET_ACCESS_KEY=weed.secret_key,
                              AWS_REGION="us-east-1")
            api_key = secrets.token_urlsafe(16)
            env = service_env("s3://bench/nbpack", api_key, cache_dir=str(work / "cache"), s3_endpoint=weed.endpoint)
            svc = ServiceProcess(env, work / "service.log").start()
            zip_path = work / "big.zip"
            big_bundle(zip_path, size, work)
            created = Client(svc.url, api_key, timeout=1800).push(zip_path)
            zip_path.unlink()
            s3 = boto3.client("s3", endpoint_url=weed.endpoint)
            figures = measure(created["links"]["download"], s3, "bench", f"nbpack/bundles/{created['id']}/bundle.zip",
                              svc.proc.pid, args.repeats)
        finally:
            if svc:
                svc.stop()
            weed.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
