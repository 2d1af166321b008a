"""Issue 22's storage question: obstore (Rust object_store) against boto3, the library nbpack's S3 backend uses, on
the same SeaweedFS, for the operations the service makes: a streamed GET (download), small and big PUTs (ingest),
256 KiB ranged GETs (lazy reads), a conditional create (``If-None-Match: *``) and a presigned GET URL.

``python -m bench.obstore_probe [--repeats 5] [--big-mib 256]`` (obstore is not a dependency: ``pip install
obstore`` in the venv first). Prints one line per operation: median seconds of each side and the ratio
obstore / boto3 (< 1: obstore faster), sides alternating inside one process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.obstore_probe")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=256)
    args = ap.parse_args(argv)
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        print("obstore is not installed: pip install obstore", file=sys.stderr)
        return 2
    import boto3
    from botocore.config import Config

    from tests.fixtures.seaweed import SeaweedFS

    work = Path(tempfile.mkdtemp(prefix="nbpack-obstore-"))
    weed = SeaweedFS(work / "seaweed")
    weed.start()
    try:
        weed.create_bucket("probe")
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=weed.endpoint,
            region_name="us-east-1",
            aws_access_key_id=weed.access_key,
            aws_secret_access_key=weed.secret_key,
            # As nbpack's S3Storage: path style, no CRC32 pass over bodies.
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        store = S3Store(
            "probe",
            endpoint=weed.endpoint,
            access_key_id=weed.access_key,
            secret_access_key=weed.secret_key,
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        big = os.urandom(args.big_mib << 20)
        small = [os.urandom(1 << 20) for _ in range(20)]
        s3.put_object(Bucket="probe", Key="big", Body=big)
        rows: list[tuple[str, list[float], list[float]]] = []

        def boto_get() -> None:
            body = s3.get_object(Bucket="probe", Key="big")["Body"]
            while body.read(1 << 20):
                pass

        def obs_get() -> None:
            for _chunk in obstore.get(store, "big").stream(min_chunk_size=1 << 20):
                pass

        def boto_put20() -> None:
            for i, data in enumerate(small):
                s3.put_object(Bucket="probe", Key=f"s/{i}", Body=data)

        def obs_put20() -> None:
            for i, data in enumerate(small):
                obstore.put(store, f"s/{i}", data)

        def boto_put_big() -> None:
            s3.put_object(Bucket="probe", Key="big2", Body=big)

        def obs_put_big() -> None:
            obstore.put(store, "big2", big)

        starts = [i * (1 << 20) for i in range(20)]

        def boto_ranges() -> None:
            for s in starts:
                s3.get_object(Bucket="probe", Key="big", Range=f"bytes={s}-{s + (256 << 10) - 1}")["Body"].read()

        def obs_ranges() -> None:
            for s in starts:
                bytes(obstore.get_range(store, "big", start=s, length=256 << 10))

        def obs_ranges_batch() -> None:
            obstore.get_ranges(store, "big", starts=starts, lengths=[256 << 10] * len(starts))

        cases = [
            (f"GET {args.big_mib} MiB streamed", boto_get, obs_get),
            ("PUT 20 x 1 MiB", boto_put20, obs_put20),
            (f"PUT {args.big_mib} MiB", boto_put_big, obs_put_big),
            ("20 ranged GETs of 256 KiB", boto_ranges, obs_ranges),
            ("20 ranges, obstore get_ranges (coalesced, concurrent)", boto_ranges, obs_ranges_batch),
        ]
        for name, b, o in cases:
            tb, to = [], []
            for r in range(args.repeats):
                for side in ((b, tb), (o, to)) if r % 2 == 0 else ((o, to), (b, tb)):
                    side[1].extend(_time(side[0], 1))
            rows.append((name, tb, to))
        for name, tb, to in rows:
            mb, mo = statistics.median(tb), statistics.median(to)
            print(f"{name:58s} boto3 {mb:8.3f} s   obstore {mo:8.3f} s   obstore/boto3 {mo / mb:5.2f}")
        # Conditional create and a signed URL: what the service needs beyond GET and PUT.
        obstore.put(store, "once", b"1", mode="create")
        try:
            obstore.put(store, "once", b"2", mode="create")
            created_twice = "NOT refused (the server ignores If-None-Match)"
        except Exception as err:  # noqa: BLE001 - obstore raises its own AlreadyExists
            created_twice = f"refused ({type(err).__name__})"
        print(f"conditional create of an existing key: {created_twice}")
        url = obstore.sign(store, "GET", "once", timedelta(minutes=5))
        with urllib.request.urlopen(url, timeout=30) as resp:
            print(f"presigned GET: HTTP {resp.status}, body {resp.read()!r}")
    finally:
        weed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
