"""Where a presigned PUT starts to pay: ``nbpack_runtime.upload()`` of one return whose output has ``size`` bytes,
with the output sent straight to storage (presigned PUT, then the slim zip) vs inside the zip (one POST).

``python -m bench.ingest_crossover --mib 1,4,8,16,64 --count 1,20 --repeats 3 [--workdir DIR]``: the same SeaweedFS +
gunicorn stack as ``bench ingest``; per size and concurrency both ways alternately, the threshold set in the runtime's
manifest (what the service writes there from ``NBPACK_DIRECT_UPLOAD_THRESHOLD``). Prints one line per case.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.ingest import _all, _forget_returns, _runtime, _stored_bundle, make_returns
from bench.service import stack


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", default="1,4,8,16,64", help="output sizes in MiB (comma-separated)")
    ap.add_argument("--count", default="1,20", help="concurrent returns per round (comma-separated)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args(argv)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="crossover-"))
    work.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    with stack(work / "stack") as st, contextlib.redirect_stdout(io.StringIO()):
        bid, folder, _endpoint, _token = _stored_bundle(st, work)
        rt = _runtime(folder)
        returns = rt.session.current_bundle().manifest["returns"]
        for count in (int(c) for c in a.count.split(",")):
            for size in (int(float(m) * (1 << 20)) for m in a.mib.split(",")):
                paths = make_returns(folder, work / f"x-{size}-{count}", size, count)
                times: dict[str, list[float]] = {"direct": [], "zip": []}
                for r in range(a.repeats):
                    for side in ("direct", "zip") if r % 2 == 0 else ("zip", "direct"):
                        returns["direct_threshold"] = size - 1 if side == "direct" else 1 << 40
                        _forget_returns(st, bid)
                        t0 = time.perf_counter()
                        _all(partial(rt.upload), paths)
                        times[side].append(time.perf_counter() - t0)
                d, z = statistics.median(times["direct"]), statistics.median(times["zip"])
                print(
                    f"{size / (1 << 20):g} MiB x{count}: direct {d:.3f} s, in the zip {z:.3f} s: "
                    f"direct/zip {d / z:.2f} ({' '.join(f'{t:.3f}' for t in times['direct'])} | "
                    f"{' '.join(f'{t:.3f}' for t in times['zip'])})",
                    file=out,
                    flush=True,
                )
        _forget_returns(st, bid)


if __name__ == "__main__":
    main()
