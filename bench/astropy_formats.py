"""What astropy gets from a bundle catalog, and what astropy's masked layout would cost (docs/astropy.md).

    .venv/bin/python -m bench.astropy_formats --rows 100000 [--repeats 3]

On ``bench.data.make_catalog(rows)`` (22 Gaia-like columns, nulls in 6): median seconds of the runtime's
``catalog(as_="astropy")`` (Arrow → astropy) against the former pandas route (``Table.from_pandas(to_pandas())``)
and astropy's own two Parquet readers; then the same table written by astropy with ``format="parquet"`` (its
masked layout: ``name`` + ``name.mask``) against the bundle catalog: columns pyarrow/pandas see, and bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from bench.data import make_catalog


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    from astropy.table import Table

    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    parser = argparse.ArgumentParser(prog="python -m bench.astropy_formats")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_bundle(BuildSpec("bench", catalogs=[CatalogInput("sources", make_catalog(args.rows))]), work / "b.zip")
        with zipfile.ZipFile(work / "b.zip") as zf:
            zf.extractall(work / "b")
        sys.path.insert(0, str(work / "b"))
        import nbpack_runtime as rt  # the copy inside the bundle

        bundle = rt.start(str(work / "b"))
        path = work / "b" / "catalogs" / "sources.parquet"
        arrow = bundle.catalog("sources")
        entry = {c["name"]: c for c in bundle.manifest["catalogs"]}["sources"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = [
                (
                    "runtime catalog(as_='astropy'), from Arrow",
                    _median(lambda: rt.to_astropy(arrow, entry), args.repeats),
                ),
                (
                    "former route Table.from_pandas(to_pandas())",
                    _median(lambda: Table.from_pandas(arrow.to_pandas()), args.repeats),
                ),
                ("Table.read(format='parquet')", _median(lambda: Table.read(path, format="parquet"), args.repeats)),
                (
                    "Table.read(format='parquet.votable')",
                    _median(lambda: Table.read(path, format="parquet.votable"), args.repeats),
                ),
            ]
            astro = rt.to_astropy(arrow, entry)
            masked = work / "astropy-layout.parquet"
            astro.write(masked, format="parquet")
        print(f"rows={args.rows} repeats={args.repeats}")
        for label, seconds in rows:
            print(f"  {label:48s} {seconds:8.3f} s")
        ours, theirs = pq.read_schema(path), pq.read_schema(masked)
        extra = [n for n in theirs.names if n.endswith(".mask")]
        print(f"  bundle catalog: {len(ours.names)} columns, {path.stat().st_size} bytes")
        print(
            f"  astropy masked layout: {len(theirs.names)} columns ({len(extra)} '.mask'), "
            f"{masked.stat().st_size} bytes ({masked.stat().st_size / path.stat().st_size:.2f}x)"
        )


if __name__ == "__main__":
    main()
