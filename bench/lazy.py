"""Benchmark ``lazy``: the first ``catalog()`` of a big catalog read lazily: with the service's default settings on
S3, straight from SeaweedFS through the presigned URL the files URL hands out (signed reads), the ask included.

One SeaweedFS + one gunicorn service on it (``bench.service.stack``). Per size, a bundle whose one catalog of 22
Gaia-like columns (``bench.data.make_catalog``) weighs about ``size`` bytes is pushed; a thin folder (the unpacked
bundle without the catalog, with ``nbpack.remote.json``) is read by the bundle's own runtime, each run with an
empty ``NBPACK_CACHE`` (a first read):

- ``lazy_first``: ``catalog("big")`` — footer, every block verified against the block digests, whole-file sha256,
  decoded; baselines ``boto3_get_read`` (boto3 GET of the stored content object to a file + ``pq.read_table``) and
  ``service_zip_read`` (the service's zip download to a file, the member extracted, ``pq.read_table``); target
  ≤ 1.25×.
- ``lazy_2_of_22``: ``catalog("big", columns=["ra", "dec"])`` against ``lazy_first``: target ≤ 0.2× of the time
  and of the catalog bytes fetched (counted as the reader stores its blocks in one extra, untimed run of each, beside
  what the service sent, counted by a TCP proxy); and against
  ``pyarrow_s3_2_of_22``: ``pq.read_table("s3://…", columns=["ra", "dec"])`` with pyarrow's own S3FileSystem on the
  same catalog stored as a plain object in the same SeaweedFS (no service, no verification): target ≤ 1.25×.
- ``pyarrow_s3_read``: the same whole, a baseline of ``lazy_first`` (reported).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import statistics
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Row
from bench.service import Runner, stack, time_row
from bench.service import label as size_label

__all__ = ["RUNNER", "run"]

MAX_FIRST = 1.25
MAX_SUBSET = 0.2
COLUMNS = ["ra", "dec"]
_ROW_BYTES = 118  # Parquet bytes per make_catalog row (zstd), measured on 1e6 rows


def _catalog_file(path: Path, size: int) -> None:
    """A Parquet file of about ``size`` bytes of make_catalog rows, written in batches (bounded memory)."""
    import pyarrow.parquet as pq

    from bench.data import make_catalog

    rows, batch, seed = max(1000, size // _ROW_BYTES), 500_000, 0
    first = make_catalog(min(rows, batch), seed)
    with pq.ParquetWriter(path, first.schema, compression="zstd") as writer:
        writer.write_table(first)
        left = rows - first.num_rows
        while left > 0:
            seed += 1
            part = make_catalog(min(left, batch), seed)
            writer.write_table(part)
            left -= part.num_rows


def _prepare(st: Any, size: int, work: Path, say: Callable[[str], None]) -> dict:
    """Build and push the bundle; the thin folder, the files prefix, the download link and the content key."""
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
    from nbpack.client import Client

    label = size_label(size)
    say(f"lazy {label}: building the bundle")
    source = work / "source.parquet"
    _catalog_file(source, size)
    zip_path = work / "bundle.zip"
    build_bundle(BuildSpec(title=f"Lazy {label}", catalogs=[CatalogInput("big", source)]), zip_path)
    source.unlink()
    created = Client(st.url, st.api_key, timeout=1800).push(zip_path)
    full = work / "full"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(full)
    zip_path.unlink()
    manifest = json.loads((full / "nbpack.json").read_text())
    entry = manifest["catalogs"][0]
    thin = work / "thin"
    shutil.copytree(full, thin, ignore=shutil.ignore_patterns("*.parquet"))
    # The same catalog as a plain object, for pyarrow's S3FileSystem (the stored part is a zip record around it).
    plain = f"{st.prefix}/bench-lazy/{label}.parquet"
    st.s3.upload_file(str(full / entry["path"]), st.bucket, plain)
    shutil.rmtree(full)
    state = json.loads(
        st.s3.get_object(Bucket=st.bucket, Key=f"{st.prefix}/handles/{created['id']}/handle.json")["Body"].read()
    )
    key, stored = max(state["parts"], key=lambda part: part[1])
    return {
        "plain": f"{st.bucket}/{plain}",
        "thin": thin,
        "manifest": manifest,
        "files": created["links"]["files"],
        "download": created["links"]["download"],
        "key": f"{st.prefix}/{key}",
        "stored": stored,
        "catalog_bytes": entry["bytes"],
        "path": entry["path"],
    }


def _fresh(rt: Any, cache: Path) -> None:
    """Untimed, between lazy reads: an empty cache and no grant or kept connection (a first read in a fresh
    kernel). Deleting the previous read's cache is no part of a read: unlinking a 1 GiB cache file took 73 ms, and
    the read after a whole read paid it in its time (a first read never does)."""
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["NBPACK_CACHE"] = str(cache)
    rt.signed.forget()  # a first read in a fresh kernel: the signed read is asked for too


def _clear(*paths: Path) -> None:
    """Untimed, before a baseline's run: the files its previous run left (unlinking 1 GiB is no part of a read)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _lazy(rt: Any, case: dict, files: str, cache: Path, columns: list[str] | None) -> int:
    """One lazy read of the catalog (``_fresh`` first, untimed, for a first read)."""
    bundle = rt.Bundle(case["thin"], case["manifest"], {"files": files, "lazy": [case["path"]]})
    with contextlib.redirect_stderr(io.StringIO()):  # the progress line
        return bundle.catalog("big", columns=columns).num_rows


def _boto3(st: Any, case: dict, scratch: Path) -> int:
    import pyarrow.parquet as pq

    target = scratch / "boto3.parquet"
    body = st.s3.get_object(Bucket=st.bucket, Key=case["key"])["Body"]
    body.read(case["stored"] - case["catalog_bytes"])  # the zip member's local header
    with open(target, "wb") as out:
        while chunk := body.read(1 << 20):
            out.write(chunk)
    return pq.read_table(target).num_rows


def _s3fs(st: Any) -> Any:
    import pyarrow.fs as pafs

    endpoint = urllib.parse.urlsplit(st.endpoint)
    return pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        scheme=endpoint.scheme,
        endpoint_override=endpoint.netloc,
        force_virtual_addressing=False,
    )


def _pyarrow_s3(st: Any, case: dict, columns: list[str] | None) -> int:
    """pyarrow reading the plain object straight from S3 (its own ranged, coalesced, concurrent reads)."""
    import pyarrow.parquet as pq

    return pq.read_table(case["plain"], columns=columns, filesystem=_s3fs(st)).num_rows


def _zip(case: dict, scratch: Path) -> int:
    import pyarrow.parquet as pq

    target = scratch / "download.zip"
    with urllib.request.urlopen(case["download"], timeout=1800) as resp, open(target, "wb") as out:
        shutil.copyfileobj(resp, out, 1 << 20)
    with zipfile.ZipFile(target) as zf:
        path = Path(zf.extract(case["path"], scratch / "unzipped"))
    return pq.read_table(path).num_rows


def _moved(rt: Any, case: dict, st: Any, scratch: Path, columns: list[str] | None) -> tuple[int, int]:
    """(catalog bytes fetched, bytes the service sent) for one first read: the first counted as the reader stores
    its verified blocks, wherever they came from (storage through a signed URL, or the files URL), the second by a
    TCP proxy in front of the service (with signed reads, only the ask's answer)."""
    from tests.lazy_helpers import CountingProxy

    fetched = 0
    store = rt.lazy._Blocks._store

    def counted(blocks: Any, b: int, data: bytes) -> None:
        nonlocal fetched
        fetched += len(data)
        store(blocks, b, data)

    port = urllib.parse.urlsplit(st.url).port
    rt.lazy._Blocks._store = counted
    try:
        with CountingProxy(("127.0.0.1", port)) as proxy:
            files = urllib.parse.urlsplit(case["files"])._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
            _fresh(rt, scratch / "cache-count")
            _lazy(rt, case, files, scratch / "cache-count", columns)
            return fetched, proxy.bytes
    finally:
        rt.lazy._Blocks._store = store


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One SeaweedFS + service; per size, the four variants alternately, ``repeats`` times each."""
    from tests.helpers import RUNTIME_DIR, load_runtime_package

    rows: list[Row] = []
    saved = os.environ.get("NBPACK_CACHE")
    with stack(workdir / "lazy-stack") as st:
        rt = load_runtime_package("nbpack_runtime_bench_lazy", RUNTIME_DIR)
        for size in sizes:
            label = size_label(size)
            work = workdir / f"lazy-{label}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            case = _prepare(st, size, work, say)
            os.sync()  # untimed: the built and stored bundle's dirty pages reach the disk before the first read's clock
            cache = work / "cache"
            variants: dict[str, Callable[[], int]] = {
                "lazy_first": functools.partial(_lazy, rt, case, case["files"], cache, None),
                "lazy_2_of_22": functools.partial(_lazy, rt, case, case["files"], cache, COLUMNS),
                "boto3_get_read": functools.partial(_boto3, st, case, work),
                "service_zip_read": functools.partial(_zip, case, work),
                "pyarrow_s3_read": functools.partial(_pyarrow_s3, st, case, None),
                "pyarrow_s3_2_of_22": functools.partial(_pyarrow_s3, st, case, COLUMNS),
            }
            # Untimed, once before the rounds and then right after each run: what a run leaves is gone before any
            # other starts (a baseline's gigabyte unlinked while its pages are still dirty is never written back
            # under the next variant's clock), and each lazy read starts as a first read.
            resets: dict[str, Callable[[], None]] = {
                "lazy_first": functools.partial(_fresh, rt, cache),
                "lazy_2_of_22": functools.partial(_fresh, rt, cache),
                "boto3_get_read": functools.partial(_clear, work / "boto3.parquet"),
                "service_zip_read": functools.partial(_clear, work / "download.zip", work / "unzipped"),
            }
            times: dict[str, list[float]] = {name: [] for name in variants}
            order = list(variants)
            for reset in resets.values():
                reset()
            for r in range(repeats):
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    t0 = time.perf_counter()
                    variants[name]()
                    times[name].append(time.perf_counter() - t0)
                    resets.get(name, lambda: None)()
                    say(f"lazy {label} {name}: {times[name][-1]:.3f} s")
            moved_full, hop_full = _moved(rt, case, st, work, None)
            moved_two, hop_two = _moved(rt, case, st, work, COLUMNS)
            if saved is None:
                os.environ.pop("NBPACK_CACHE", None)
            else:
                os.environ["NBPACK_CACHE"] = saved
            volume = case["catalog_bytes"]
            first = statistics.median(times["lazy_first"])
            bytes_ratio = moved_two / moved_full
            rows.append(
                time_row(
                    "lazy",
                    label,
                    "lazy_first",
                    times["lazy_first"],
                    volume,
                    note=f"{moved_full} B moved, {hop_full} B of it through the service",
                )  # fmt: skip
            )
            for name, note in (
                ("boto3_get_read", "boto3 GET of the stored object to a file + pq.read_table"),
                ("service_zip_read", "service zip download + extract + pq.read_table"),
                ("pyarrow_s3_read", "pq.read_table('s3://…') of the plain object, pyarrow's S3FileSystem (reported)"),
            ):
                rows.append(
                    time_row(
                        "lazy", label, name, times[name], volume,
                        compared="lazy_first", nbpack_median=first, note=note,
                        max_ratio=None if name.startswith("pyarrow") else MAX_FIRST,
                    )
                )  # fmt: skip
            two = time_row(
                "lazy",
                label,
                "lazy_2_of_22",
                times["lazy_2_of_22"],
                volume,
                note=f"{moved_two} B moved ({hop_two} B through the service): bytes ratio {bytes_ratio:.2f} "
                f"(<={MAX_SUBSET:g})",
            )
            # lazy_2_of_22 is the nbpack side here and lazy_first its baseline: ratio = two / full.
            two.ratio = two.median_s / first
            two.compared, two.target = "lazy_first", f"<={MAX_SUBSET:g}x"
            two.met = two.ratio <= MAX_SUBSET and bytes_ratio <= MAX_SUBSET
            rows.append(two)
            rows.append(
                time_row(
                    "lazy", label, "pyarrow_s3_2_of_22", times["pyarrow_s3_2_of_22"], volume,
                    compared="lazy_2_of_22", nbpack_median=two.median_s, max_ratio=MAX_FIRST,
                    note=f"pq.read_table('s3://…', columns={COLUMNS}), pyarrow's S3FileSystem",
                )
            )  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)
    return rows


RUNNER = Runner(
    "lazy",
    "first catalog() through the files URL vs boto3 GET / zip download + pq.read_table; 2 of 22 columns",
    "bytes",
    small=[16 << 20],
    default=[64 << 20, 1 << 30],
    run=run,
)
