"""Download throughput and worker memory: a bundle through the service against boto3 from the same object.

``python -m bench.download --size 1GiB`` starts its own SeaweedFS and one gunicorn service, stores a bundle of
that size (a random-float64 catalog, nearly incompressible), then times ``GET /b/<bid>/download`` and a direct
boto3 ``get_object`` of the same bytes stored as one object, alternating, while sampling the gunicorn workers' RSS.
It is not a ``harness.Benchmark``: the harness runs each variant in a fresh child and reports *that* process's
peak RSS, while the figure that matters here is the long-lived service worker's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Row
from bench.service import Runner, stack, throughput_ratio, time_row, worker_rss_kib
from bench.service import label as size_label

__all__ = ["RUNNER", "big_bundle", "measure", "min_throughput", "whole_object", "worker_rss_kib", "run", "main"]

MAX_GROWTH_MIB = 64


def min_throughput(size: int) -> float:
    """Issue 13's target for a download of ``size`` bytes, as a fraction of boto3 GET's throughput."""
    if size < 64 * 10**6:
        return 0.6  # 1 MB: the service's fixed cost (token, handle) weighs most
    return 0.8 if size < 1 << 30 else 0.9


def big_bundle(path: Path, size: int, workdir: Path) -> None:
    """Build a bundle whose one catalog is ``size`` bytes of random float64, written in 8 MiB batches."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    rng = np.random.default_rng(0)
    parquet = workdir / "big.parquet"
    batch_rows = 1 << 20
    schema = pa.schema([("x", pa.float64())])
    with pq.ParquetWriter(parquet, schema, compression="none") as writer:
        left = max(1, size // 8)
        while left > 0:
            n = min(left, batch_rows)
            writer.write_table(pa.table({"x": rng.random(n)}, schema=schema))
            left -= n
    build_bundle(BuildSpec(title="Big", catalogs=[CatalogInput("big", parquet)]), path)


def _drain(read: Callable[[int], bytes]) -> int:
    n = 0
    while chunk := read(1 << 20):
        n += len(chunk)
    return n


def measure(
    download_url: str,
    s3: Any,
    bucket: str,
    keys: list[str],
    master_pid: int,
    repeats: int = 3,
    extra: dict[str, Callable[[], int]] | None = None,
) -> dict:
    """Time service and boto3 downloads alternately; MB/s (best run), their ratio and worker RSS in MiB.

    ``keys``: the objects boto3 reads one after the other for the same bytes (``whole_object``: the zip as one).
    ``extra``: more ways to read the same bytes, timed in the same rounds (``times_s_raw`` has them by name). The
    order turns by one each round, so no side always runs first (right after a GET of the other) or last.
    """
    size = sum(s3.head_object(Bucket=bucket, Key=key)["ContentLength"] for key in keys)
    # Preparing wrote GBs (the bundle, its upload, the first download, the baseline object, the whole zip); the
    # kernel writes dirty pages back up to 30 s later, taking CPU from whichever GET runs then (the first rounds).
    os.sync()
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
        return sum(_drain(s3.get_object(Bucket=bucket, Key=key)["Body"].read) for key in keys)

    sides: list[tuple[str, Callable[[], int]]] = [("service", via_service), ("boto3", via_boto3)]
    sides += list((extra or {}).items())
    times: dict[str, list[float]] = {name: [] for name, _ in sides}
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for r in range(repeats):
            turn = r % len(sides)
            for name, fn in sides[turn:] + sides[:turn]:
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
    return {
        "bytes": size,
        "service_MBps": round(mb / best["service"], 1),
        "boto3_MBps": round(mb / best["boto3"], 1),
        "ratio_service_to_boto3": round(best["boto3"] / best["service"], 3),
        "times_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
        "times_s_raw": times,
        "worker_rss_MiB": {"before": before // 1024, "peak": peak[0] // 1024, "after": after // 1024},
        "rss_growth_MiB": (peak[0] - before) // 1024,
    }


def whole_object(st: Any, download_url: str, hid: str, workdir: Path, first: list[float] | None = None) -> list[str]:
    """The bytes the service serves, stored as one object: the baseline is one boto3 GET, as a plain bucket serves
    a file (the handle's own parts would cost boto3 one GET per zip member). ``first`` gets the seconds of this,
    the handle's first download (above ``NBPACK_WHOLE_ZIP_MIN_BYTES`` it composes the whole zip in the store)."""
    path = workdir / f"{hid}.zip"
    t0 = time.perf_counter()
    with urllib.request.urlopen(download_url, timeout=600) as resp, open(path, "wb") as out:
        while chunk := resp.read(1 << 20):
            out.write(chunk)
    if first is not None:
        first.append(time.perf_counter() - t0)
    key = f"{st.prefix}-whole/{hid}.zip"
    st.s3.upload_file(str(path), st.bucket, key)
    path.unlink()
    return [key]


def composed(st: Any, hid: str, size: int, since: float, timeout: float = 900) -> float | None:
    """Seconds from ``since`` (the first download's start) until the handle's whole zip is in the store, or None
    when the service streams zips of ``size`` (``NBPACK_WHOLE_ZIP_MIN_BYTES``: 0 = always, else the threshold)."""
    import os

    from nbpack.config import Config

    default = Config.__dataclass_fields__["whole_zip_min_bytes"].default
    limit = int(os.environ.get("NBPACK_WHOLE_ZIP_MIN_BYTES", default))
    if not limit or size < limit:
        return None
    key = f"{st.prefix}/handles/{hid}/whole.zip"
    while True:
        try:
            st.s3.head_object(Bucket=st.bucket, Key=key)
            return time.perf_counter() - since
        except Exception:
            if time.perf_counter() - since > timeout:
                raise RuntimeError(f"the whole zip of {hid} was not composed within {timeout} s") from None
            time.sleep(0.1)


# The other reads of the same bytes each round times (``same_bytes``), as rows with service_get's throughput ratio to
# them: they split what separates service_get from the target's baseline into the store's side and the client's.
EXTRA_ROWS = {
    "store_whole": ("boto3_whole_zip", "boto3 GET of the very object the 302 points at (the redirect's limit)"),
    "urllib_presigned": ("urllib_presigned_get", "the baseline object by presigned URL with service_get's client"),
}


def same_bytes(st: Any, hid: str, keys: list[str], redirected: bool) -> dict[str, Callable[[], int]]:
    """Reads of the download's bytes besides the two compared: boto3 of the handle's whole zip (when downloads
    redirect to it) and ``urllib`` of a presigned URL of the baseline object (the client and 1 MiB reads of
    ``service_get``, so the client library's share shows; boto3 reuses a pooled connection, urllib does not)."""

    def urllib_presigned() -> int:
        n = 0
        for key in keys:
            url = st.s3.generate_presigned_url("get_object", Params={"Bucket": st.bucket, "Key": key}, ExpiresIn=600)
            with urllib.request.urlopen(url, timeout=600) as resp:
                n += _drain(resp.read)
        return n

    out: dict[str, Callable[[], int]] = {"urllib_presigned": urllib_presigned}
    if redirected:
        whole = f"{st.prefix}/handles/{hid}/whole.zip"
        out["store_whole"] = lambda: _drain(st.s3.get_object(Bucket=st.bucket, Key=whole)["Body"].read)
    return out


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One SeaweedFS + service for all sizes; per size store a bundle and time both sides alternately."""
    from nbpack.client import Client

    rows: list[Row] = []
    with stack(workdir / "download-stack") as st:
        client = Client(st.url, st.api_key, timeout=1800)
        for size in sizes:
            label = size_label(size)
            say(f"download {label}: preparing a bundle")
            zip_path = workdir / f"download-{label}.zip"
            big_bundle(zip_path, size, workdir)
            created = client.push(zip_path)
            zip_path.unlink()
            first: list[float] = []
            t0 = time.perf_counter()
            key = whole_object(st, created["links"]["download"], created["id"], workdir, first)
            # The timed downloads are the steady state: after the first one's composition (when there is one).
            compose_s = composed(st, created["id"], size, t0)
            extra = same_bytes(st, created["id"], key, compose_s is not None)
            f = measure(created["links"]["download"], st.s3, st.bucket, key, st.master_pid, repeats, extra)
            say(f"download {label}: {json.dumps(f)}")
            times, volume = f["times_s_raw"], f["bytes"]
            growth = f["rss_growth_MiB"]
            service_med = statistics.median(times["service"])
            target = min_throughput(size)
            rows.append(
                time_row(
                    "download",
                    label,
                    "service_first_get",
                    first,
                    volume,
                    note="the handle's first download (streamed), to a file"
                    + (f"; whole zip in the store {compose_s:.1f} s after it started" if compose_s else ""),
                )
            )
            rows.append(
                time_row(
                    "download",
                    label,
                    "service_get",
                    times["service"],
                    volume,
                    rss_mib=f["worker_rss_MiB"]["peak"],
                    note=f"worker RSS +{growth} MiB (<{MAX_GROWTH_MIB})",
                )
            )
            rows.append(
                time_row(
                    "download",
                    label,
                    "boto3_get_object",
                    times["boto3"],
                    volume,
                    compared="service_get",
                    nbpack_median=service_med,
                    max_ratio=throughput_ratio(target),
                    extra_ok=growth < MAX_GROWTH_MIB,
                    note=f"throughput ratio {statistics.median(times['boto3']) / service_med:.2f} (>={target:g})",
                )
            )
            for name, (variant, what) in EXTRA_ROWS.items():
                if name in times:
                    ratio = statistics.median(times[name]) / service_med
                    rows.append(
                        time_row(
                            "download",
                            label,
                            variant,
                            times[name],
                            volume,
                            note=f"{what}; throughput ratio {ratio:.2f}",
                        )
                    )
    return rows


RUNNER = Runner(
    "download",
    "GET /b/<bid>/download through gunicorn on SeaweedFS vs boto3 get_object",
    "bytes",
    small=[1 << 20],
    default=[10**6, 64 * 10**6, 1 << 30],
    run=run,
)


def main(argv: list[str] | None = None) -> int:
    """Start SeaweedFS and a service, store a bundle of ``--size``, print the figures as JSON."""
    from bench.harness import parse_size
    from nbpack.client import Client

    p = argparse.ArgumentParser(prog="python -m bench.download", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB", help="bundle size: 64MiB, 1GiB, ...")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    size = parse_size(args.size, "bytes")
    with tempfile.TemporaryDirectory(prefix="nbpack-bench-download-") as tmp:
        work = Path(tmp)
        with stack(work) as st:
            zip_path = work / "big.zip"
            big_bundle(zip_path, size, work)
            created = Client(st.url, st.api_key, timeout=1800).push(zip_path)
            zip_path.unlink()
            t0 = time.perf_counter()
            keys = whole_object(st, created["links"]["download"], created["id"], work)
            compose_s = composed(st, created["id"], size, t0)
            figures = measure(created["links"]["download"], st.s3, st.bucket, keys, st.master_pid, args.repeats)
            figures["whole_zip_composed_s"] = compose_s
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
