"""Benchmark ``ingest``: return-bundle upload through the service vs boto3 ``put_object`` of the same bytes.

One SeaweedFS and one gunicorn service (1 worker, 8 gthreads, as README.md deploys it) for all sizes. A small
bundle is stored through the service; its stored copy (with the real return endpoint and token) is unpacked and
the bundle's own ``nbpack_runtime`` package writes valid return zips without a kernel (``start``, ``save_output``,
``finish(upload=False)``), as tests/integration/test_faults.py does. Size = the bytes moved per round: 1 upload of a
return
whose output is ``size`` random bytes, and 20 concurrent uploads of 20 distinct returns of ``size/20`` each.
``POST /api/v1/bundles/<bid>/returns`` (Bearer return token, must answer 201) and the runtime's ``upload()`` (outputs
over the service's direct-upload threshold by presigned PUT, then the slim zip: what a kernel does; the issue's
target is held against this one) are timed against boto3
``put_object`` of the same files to the same SeaweedFS (20 threads for the concurrent case). Between rounds the
stored return objects are deleted so every service upload does the full work (validation, upload, manifest).
The gunicorn worker's RSS is sampled while the service side runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import Row
from bench.service import RssSampler, Runner, Stack, deployment_tag, mib, stack, throughput_ratio, time_row
from bench.service import label as size_label
from nbpack.config import Config

__all__ = ["RUNNER", "run", "make_returns", "min_throughput", "CONCURRENT"]

CONCURRENT = 20
# What the service puts in a stored bundle's returns.direct_threshold when the stack sets nothing.
THRESHOLD = Config.__dataclass_fields__["direct_upload_threshold"].default
MAX_GROWTH_MIB = 64


def min_throughput(size: int, count: int) -> float | None:
    """Issue 13's target (a fraction of boto3 PUT's throughput) for ``size`` bytes in ``count`` returns, or None."""
    if count == CONCURRENT and size < 64 * 10**6:
        return 0.5  # 1 MB x20: 50 kB returns, the per-return requests weigh most
    if count == CONCURRENT and size < 1 << 30:
        return 0.8
    if count == 1 and size >= 1 << 30:
        return 0.9
    return None


TIMEOUT = 1800

# Runs in a child: the runtime is imported from the unpacked bundle folder (no kernel, no nbpack import).
_WRITER = """\
import importlib.util, os, shutil, sys
folder, out_dir, size, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
big = os.path.join(out_dir, "big.bin")
for i in range(count):
    shutil.rmtree(os.path.join(folder, "outputs"), ignore_errors=True)
    # Random bytes per return: distinct outputs, so neither the return id nor a direct-upload blob is shared.
    with open(big, "wb") as f:
        left = size
        while left > 0:
            f.write(os.urandom(min(left, 1 << 20)))
            left -= 1 << 20
    for name in [k for k in sys.modules if k == "nbpack_runtime" or k.startswith("nbpack_runtime.")]:
        del sys.modules[name]  # a fresh runtime per return: its own run state
    package = os.path.join(folder, "nbpack_runtime")
    spec = importlib.util.spec_from_file_location("nbpack_runtime", os.path.join(package, "__init__.py"),
                                                  submodule_search_locations=[package])
    rt = importlib.util.module_from_spec(spec)
    sys.modules["nbpack_runtime"] = rt
    spec.loader.exec_module(rt)
    rt.start(folder)
    rt.save_output(big, "big.bin")
    rt.save_value("variant", i)
    os.environ["NBPACK_RETURN_PATH"] = os.path.join(out_dir, f"r{i:02d}.zip")
    rt.finish(upload=False)
os.remove(big)
"""


def _stored_bundle(st: Stack, workdir: Path) -> tuple[str, Path, str, str]:
    """Store a small bundle through the service; unpack the stored copy: (bid, folder, endpoint, token)."""
    from nbpack.bundle import archive
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
    from nbpack.client import Client

    csv = workdir / "sources.csv"
    csv.write_text("id,flux\n1,1.5\n2,2.5\n")
    built = workdir / "bundle.zip"
    build_bundle(BuildSpec(title="Ingest benchmark", catalogs=[CatalogInput("sources", csv)]), built)
    client = Client(st.url, st.api_key, timeout=TIMEOUT)
    bid = client.push(built)["id"]
    stored = client.download(bid, workdir / "stored.zip")
    folder = workdir / "unpacked"
    shutil.rmtree(folder, ignore_errors=True)  # a kept --workdir: this run's stack stored a new bundle
    with archive.open_zip(stored) as zf:
        archive.extract(zf, folder)
    manifest = json.loads((folder / "nbpack.json").read_text())
    return bid, folder, manifest["returns"]["endpoint"], manifest["returns"]["token"]


def make_returns(folder: Path, out_dir: Path, output_bytes: int, count: int) -> list[Path]:
    """``count`` distinct valid return zips, each with an output of ``output_bytes`` random bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    have = sorted(out_dir.glob("r*.zip"))
    manifest = json.loads((folder / "nbpack.json").read_text())
    if len(have) == count and all(_bundle_of(p) == manifest["id"] for p in have):
        return have  # a kept --workdir: made already, for this run's bundle (another's would be refused)
    for p in have:
        p.unlink()
    env = {**os.environ, "NBPACK_NOTEBOOK": str(folder / manifest["payload"]["notebook"]), "NBPACK_NO_UPLOAD": "1"}
    subprocess.run(
        [sys.executable, "-c", _WRITER, str(folder), str(out_dir), str(output_bytes), str(count)],
        env=env,
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    return sorted(out_dir.glob("r*.zip"))


def _bundle_of(path: Path) -> str | None:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("nbpack-return.json")).get("bundle_id")


def _post(endpoint: str, token: str, path: Path) -> dict[str, Any]:
    # The id announced as the runtime's upload() announces it: the service stores the body as it arrives.
    with zipfile.ZipFile(path) as zf:
        rid = json.loads(zf.read("nbpack-return.json"))["id"]
    with open(path, "rb") as body:
        req = urllib.request.Request(
            endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/zip",
                "Content-Length": str(path.stat().st_size),
                "X-Nbpack-Return-Id": rid,
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                status, answer = resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"upload of {path.name}: HTTP {err.code} {err.read()[:300]!r}") from None
    if status != 201:
        # 200 would mean "already stored": the service skipped the upload, the run would not count.
        raise RuntimeError(f"upload of {path.name}: HTTP {status}, not 201 (return already stored?)")
    return answer


def _put(st: Stack, path: Path) -> None:
    with open(path, "rb") as body:
        st.s3.put_object(Bucket=st.bucket, Key=f"put/{path.name}", Body=body)


def _forget_returns(st: Stack, bid: str) -> None:
    """Delete every stored return and direct-upload blob of ``bid``, with its quota ledger and tenant charges (as gc
    would), so the next round is a first upload again."""
    prefixes = ("returns", "blobs", "quota", "tenants/default/usage")
    for prefix in (f"{st.prefix}/{p}/{bid}/" for p in prefixes):
        listed = st.s3.list_objects_v2(Bucket=st.bucket, Prefix=prefix)
        keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
        if keys:
            st.s3.delete_objects(Bucket=st.bucket, Delete={"Objects": keys})


def _runtime(folder: Path) -> Any:
    """The bundle's own nbpack_runtime, imported from its folder and started there (as in a notebook)."""
    package = folder / "nbpack_runtime"
    spec = importlib.util.spec_from_file_location(
        "nbpack_runtime", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    rt = importlib.util.module_from_spec(spec)
    sys.modules["nbpack_runtime"] = rt
    spec.loader.exec_module(rt)
    rt.start(folder)
    return rt


def _runtime_upload(rt: Any, path: Path) -> None:
    rt.upload(path)


def _all(fn: Callable[[Path], Any], paths: list[Path]) -> None:
    if len(paths) == 1:
        fn(paths[0])
        return
    with ThreadPoolExecutor(len(paths)) as pool:
        list(pool.map(fn, paths))  # list(): re-raise the first failure


def _rounds(
    st: Stack,
    bid: str,
    endpoint: str,
    token: str,
    rt: Any,
    paths: list[Path],
    repeats: int,
    tag: str,
    say: Callable[[str], None],
) -> tuple[dict[str, list[float]], RssSampler, int]:
    """Service, runtime and boto3 uploads of ``paths`` alternately: (seconds by side, RSS sampler, growth KiB)."""
    sides = [
        ("service", partial(_all, partial(_post, endpoint, token), paths)),
        ("runtime", partial(_all, partial(_runtime_upload, rt), paths)),
        ("boto3", partial(_all, partial(_put, st), paths)),
    ]
    times: dict[str, list[float]] = {"service": [], "runtime": [], "boto3": []}
    sampler, growth = RssSampler(st.master_pid), 0
    for r in range(repeats):
        for name, fn in sides[r % 3 :] + sides[: r % 3]:
            if name != "boto3":
                _forget_returns(st, bid)
                sampler.start()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            if name != "boto3":
                growth = max(growth, sampler.stop())
            say(f"ingest {tag} round {r + 1}/{repeats}: {name} {times[name][-1]:.3f}s")
    return times, sampler, growth


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """Per size: make the returns, then time service and boto3 uploads (1 and 20 concurrent) alternately."""
    rows: list[Row] = []
    # The runtime prints progress on stdout (where the report goes); swapped once here, not per thread.
    with stack(workdir / "ingest-stack") as st, contextlib.redirect_stdout(io.StringIO()):
        bid, folder, endpoint, token = _stored_bundle(st, workdir)
        rt = _runtime(folder)
        for size in sizes:
            label = size_label(size)
            for count in (1, CONCURRENT):
                say(f"ingest {label} x{count}: making {count} return zip(s)")
                paths = make_returns(folder, workdir / f"ingest-{label}-x{count}", max(1, size // count), count)
                volume = sum(p.stat().st_size for p in paths)
                times, sampler, growth = _rounds(st, bid, endpoint, token, rt, paths, repeats, f"{label} x{count}", say)
                tag = deployment_tag()  # another deployment (bench --workers/--threads): its own rows' names
                variant = f"service_post_x{count}{tag}"
                target = min_throughput(size, count)
                want = f" (>={target:g})" if target else " (reported)"
                med = statistics.median(times["service"])
                rows.append(
                    time_row(
                        "ingest",
                        label,
                        variant,
                        times["service"],
                        volume,
                        rss_mib=mib(sampler.peak),
                        note=f"worker RSS +{mib(growth):.0f} MiB (<{MAX_GROWTH_MIB}), both nbpack sides",
                    )
                )
                # The target is held against the runtime's upload (below): it is how a kernel sends its
                # results back, big outputs straight to storage. The POST of a whole zip is reported beside it.
                rows.append(
                    time_row(
                        "ingest",
                        label,
                        f"boto3_put_object_x{count}",
                        times["boto3"],
                        volume,
                        compared=variant,
                        nbpack_median=med,
                        note=f"throughput ratio {statistics.median(times['boto3']) / med:.2f} (reported)",
                    )
                )
                rt_med = statistics.median(times["runtime"])
                rows.append(
                    time_row(
                        "ingest",
                        label,
                        f"runtime_upload_x{count}{tag}",
                        times["runtime"],
                        volume,
                        note=f"nbpack_runtime.upload(): outputs > {THRESHOLD >> 20} MiB by presigned PUT, then the zip",
                    )
                )
                rows.append(
                    time_row(
                        "ingest",
                        label,
                        f"boto3_vs_runtime_x{count}",
                        times["boto3"],
                        volume,
                        compared=f"runtime_upload_x{count}{tag}",
                        nbpack_median=rt_med,
                        max_ratio=throughput_ratio(target) if target else None,
                        extra_ok=mib(growth) < MAX_GROWTH_MIB,
                        note=f"throughput ratio {statistics.median(times['boto3']) / rt_med:.2f}{want}",
                    )
                )
            _forget_returns(st, bid)
    return rows


RUNNER = Runner(
    "ingest",
    "return upload through the service (1 and 20 concurrent) vs boto3 put_object, SeaweedFS",
    "bytes",
    small=[1 << 20],
    default=[10**6, 64 * 10**6, 1 << 30],
    run=run,
)
