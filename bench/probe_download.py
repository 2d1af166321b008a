"""Where a redirected download's time goes: probes alternated in one SeaweedFS + service run.

``python -m bench.probe_download --size 1GiB --repeats 5`` stores one bundle, lets the service compose its whole
zip, then lays the same bytes out in the store in other ways (one PUT, boto3's 8 MiB multipart upload, compositions
with other copy-range sizes) and times, round-robin, each (client, object) pair below; prints a table of min /
median seconds, client and SeaweedFS CPU seconds per GET, and each probe's time and SeaweedFS CPU over the ``--base``
probe's in the same round (the median of those ratios: neighbours in time share the machine's load, so on a busy
machine they resolve a few per cent where separate medians do not). Not a ``bench`` module of the table: a
diagnostic (bench/README.md, "Download probes").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.download import big_bundle, composed, whole_object
from bench.service import cpu_seconds, stack


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _drain(read: Callable[[int], bytes], size: int) -> int:
    n = 0
    while chunk := read(size):
        n += len(chunk)
    return n


def _urllib(url: str, read_size: int = 1 << 20) -> int:
    with urllib.request.urlopen(url, timeout=600) as resp:
        return _drain(resp.read, read_size)


def _readinto(url: str, read_size: int = 1 << 20, start: int = 0) -> int:
    """http.client straight into one reused buffer: the least a Python client can do per byte. ``start``: read from
    there on (a Range request)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=600)
    try:
        headers = {"Range": f"bytes={start}-"} if start else {}
        conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers)
        resp = conn.getresponse()
        if resp.status != (206 if start else 200):
            raise RuntimeError(f"GET {resp.status}")
        buf = memoryview(bytearray(read_size))
        n = 0
        while got := resp.readinto(buf):
            n += got
        return n
    finally:
        conn.close()


# SeaweedFS's S3 GET copies an object to the client in reads of this many bytes from the object's (or the Range's)
# start (s3api streamRangeToClient, 4.x); a read across a chunk boundary takes its two-chunk path. The shifted
# probes move that grid onto (composed) or off (plain) the chunk boundaries, to see whether that costs anything.
GATEWAY_READ = 256 << 10


def _layout(filer_port: int, bucket: str, key: str) -> tuple[str, int]:
    """The object's SeaweedFS chunks as the filer lists them (count, sizes in MiB, chunks off the gateway's read
    grid), and the shift most of its chunk boundaries have against that grid (offset modulo ``GATEWAY_READ``)."""
    url = f"http://127.0.0.1:{filer_port}/buckets/{bucket}/{urllib.parse.quote(key)}?metadata=true"
    with urllib.request.urlopen(url, timeout=30) as resp:
        entry = json.loads(resp.read())
    chunks = entry.get("chunks") or entry.get("Chunks") or []
    sizes = sorted(int(c.get("size", 0)) for c in chunks)
    manifest = sum(1 for c in chunks if c.get("is_chunk_manifest"))
    volumes = sorted({str(c.get("file_id", "")).split(",")[0] for c in chunks})
    mib = [round(n / (1 << 20), 1) for n in sizes]
    low, high = (mib[0], mib[-1]) if mib else (0, 0)
    shifts = [int(c.get("offset", 0)) % GATEWAY_READ for c in chunks]
    off_grid = sum(1 for s in shifts if s)
    shift = max(set(shifts), key=shifts.count) if shifts else 0
    return (
        f"{len(chunks)} chunks ({manifest} manifests) in volumes {','.join(volumes)}, MiB min {low} max {high},"
        f" {off_grid} starting off the {GATEWAY_READ >> 10} KiB read grid",
        shift,
    )


def probe(
    size: int, repeats: int, work: Path, say: Callable[[str], None], only: str = "", base: str = ""
) -> dict[str, Any]:
    import urllib3

    from nbpack.client import Client
    from nbpack.store import s3_compose

    with stack(work / "stack") as st:
        s3, bucket = st.s3, st.bucket
        zpath = work / "big.zip"
        big_bundle(zpath, size, work)
        created = Client(st.url, st.api_key, timeout=1800).push(zpath)
        zpath.unlink()
        hid, url = created["id"], created["links"]["download"]
        t0 = time.perf_counter()
        [plain_mpu] = whole_object(st, url, hid, work)  # boto3 upload_file: 8 MiB multipart parts
        say(f"composed by the service after {composed(st, hid, size, t0):.1f} s")
        whole = f"{st.prefix}/handles/{hid}/whole.zip"
        total = s3.head_object(Bucket=bucket, Key=whole)["ContentLength"]
        handle = json.loads(s3.get_object(Bucket=bucket, Key=f"{st.prefix}/handles/{hid}/handle.json")["Body"].read())
        parts = [(k, int(n)) for k, n in handle["parts"]]
        say(f"parts: {len(parts)}, biggest {max(n for _, n in parts)}")
        data = s3.get_object(Bucket=bucket, Key=whole)["Body"].read()
        single = f"{st.prefix}-probe/single.zip"
        s3.put_object(Bucket=bucket, Key=single, Body=data)
        del data
        objects = {"composed": whole, "plain_mpu8": plain_mpu, "single_put": single}
        for copy_mib in (8, 64, 256):
            if only and not re.search(only, f"boto3_1MiB composed_{copy_mib}"):
                continue  # a composition not timed is not made
            key = f"{st.prefix}-probe/composed-{copy_mib}.zip"
            saved = s3_compose.MAX_COPY
            s3_compose.MAX_COPY = copy_mib << 20
            try:
                c0 = time.perf_counter()
                s3_compose.compose(
                    s3,
                    bucket,
                    key,
                    parts,
                    lambda k: f"{st.prefix}/{k}",
                    lambda k, s, e: s3.get_object(Bucket=bucket, Key=f"{st.prefix}/{k}", Range=f"bytes={s}-{e}")[
                        "Body"
                    ].iter_chunks(1 << 20),
                    lambda _w: __import__("contextlib").nullcontext(),
                )
                say(f"composed with {copy_mib} MiB copies in {time.perf_counter() - c0:.1f} s")
            finally:
                s3_compose.MAX_COPY = saved
            objects[f"composed_{copy_mib}"] = key

        shifts: dict[str, int] = {}
        for name, key in objects.items():
            try:
                text, shifts[name] = _layout(st.weed.ports["filer.port"], bucket, key)
                say(f"layout {name}: {text}")
            except Exception as e:  # a diagnostic: a layout not listed is said, not fatal
                say(f"layout {name}: not listed ({e})")
        # From this offset on the composed object's chunk boundaries (its big record's) fall on the gateway's grid.
        shift = shifts.get("composed", 0)
        weed_pid = st.weed.proc.pid

        def presign(key: str, disposition: bool = False) -> str:
            params = {"Bucket": bucket, "Key": key}
            if disposition:
                params["ResponseContentDisposition"] = f'attachment; filename="{hid}.zip"'
            return s3.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)

        pool = urllib3.PoolManager()

        def u3(u: str) -> int:
            r = pool.request("GET", u, preload_content=False)
            try:
                return _drain(r.read, 1 << 20)
            finally:
                r.release_conn()

        def redirect_only() -> int:
            opener = urllib.request.build_opener(_NoRedirect)
            try:
                opener.open(url, timeout=60)
            except urllib.error.HTTPError as e:
                if e.code != 302:
                    raise
                e.close()
            return total

        gets: dict[str, Callable[[], int]] = {
            "service_302_urllib": lambda: _urllib(url),
            "redirect_only_302": redirect_only,
        }
        for name, key in objects.items():
            gets[f"boto3_1MiB {name}"] = lambda key=key: _drain(
                s3.get_object(Bucket=bucket, Key=key)["Body"].read, 1 << 20
            )
        gets["urllib_1MiB composed+disp"] = lambda: _urllib(presign(whole, True))
        gets["urllib_1MiB composed"] = lambda: _urllib(presign(whole))
        gets["urllib_1MiB plain_mpu8"] = lambda: _urllib(presign(plain_mpu))
        gets["urllib_8MiB composed+disp"] = lambda: _urllib(presign(whole, True), 8 << 20)
        gets["urllib_64KiB composed+disp"] = lambda: _urllib(presign(whole, True), 64 << 10)
        gets["readinto_1MiB composed+disp"] = lambda: _readinto(presign(whole, True))
        gets["urllib3_1MiB composed+disp"] = lambda: u3(presign(whole, True))
        gets["boto3_8MiB composed"] = lambda: _drain(s3.get_object(Bucket=bucket, Key=whole)["Body"].read, 8 << 20)
        gets["readinto_1MiB composed"] = lambda: _readinto(presign(whole))
        gets["readinto_1MiB plain_mpu8"] = lambda: _readinto(presign(plain_mpu))
        # name -> (the GET, the bytes it must give)
        probes: dict[str, tuple[Callable[[], int], int]] = {name: (fn, total) for name, fn in gets.items()}
        if shift:
            probes["readinto_1MiB composed@aligned"] = (lambda: _readinto(presign(whole), start=shift), total - shift)
            probes["readinto_1MiB plain_mpu8@shifted"] = (
                lambda: _readinto(presign(plain_mpu), start=shift),
                total - shift,
            )
        if only:
            probes = {k: v for k, v in probes.items() if re.search(only, k)}
        base = base if base in probes else next((k for k in probes if "plain_mpu8" in k), next(iter(probes)))
        say(f"composed chunk boundaries {shift} B past the read grid; ratios against {base}")
        os.sync()  # the layouts just written: their writeback must not land on the first probes (bench/download.py)
        times: dict[str, list[float]] = {k: [] for k in probes}
        cpu: dict[str, list[float]] = {k: [] for k in probes}
        wcpu: dict[str, list[float]] = {k: [] for k in probes}
        for r in range(repeats):
            order = list(probes.items())
            turn = r % len(order)  # no probe always runs first, or right after the same other one
            for name, (fn, expected) in order[turn:] + order[:turn]:
                w0, c0, t0 = cpu_seconds(weed_pid), time.process_time(), time.perf_counter()
                got = fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                wcpu[name].append(cpu_seconds(weed_pid) - w0)
                if got != expected:
                    raise RuntimeError(f"{name}: {got} bytes of {expected}")
            say(f"round {r + 1}/{repeats} done")

        def paired(xs: list[float], bs: list[float]) -> float:
            """The median over rounds of this probe's figure over the base's in the same round."""
            ratios = [x / b for x, b in zip(xs, bs, strict=True) if b > 0]
            return round(statistics.median(ratios), 3) if ratios else float("nan")

        return {
            name: {
                "min": round(min(v), 3),
                "median": round(statistics.median(v), 3),
                "cpu_median": round(statistics.median(cpu[name]), 3),
                "weed_cpu_median": round(statistics.median(wcpu[name]), 3),
                "vs_base": paired(v, times[base]),
                "weed_vs_base": paired(wcpu[name], wcpu[base]),
                "all": [round(t, 3) for t in v],
            }
            for name, v in times.items()
        }


def main(argv: list[str] | None = None) -> int:
    from bench.harness import parse_size

    p = argparse.ArgumentParser(prog="python -m bench.probe_download", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB")
    p.add_argument("--repeats", type=int, default=5, help="rounds (at least 1)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--only", default="", help="a regular expression: time only the probes it finds in their names")
    p.add_argument("--base", default="", help="the probe the ratios are to (default: the first plain_mpu8 probe timed)")
    args = p.parse_args(argv)
    size = parse_size(args.size, "bytes")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    with tempfile.TemporaryDirectory(prefix="probe-dl-", dir=args.workdir) as tmp:
        out = probe(size, args.repeats, Path(tmp), lambda m: print(m, flush=True), args.only, args.base)
    width = max(map(len, out))
    print(
        f"{'probe':<{width}}  {'min s':>7} {'median s':>8} {'cpu s':>6} {'weed cpu':>8}"
        f" {'vs base':>7} {'weed vs':>7}  all"
    )
    for name, f in out.items():
        print(
            f"{name:<{width}}  {f['min']:7.3f} {f['median']:8.3f} {f['cpu_median']:6.3f} {f['weed_cpu_median']:8.3f}"
            f" {f['vs_base']:7.3f} {f['weed_vs_base']:7.3f}  {f['all']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
