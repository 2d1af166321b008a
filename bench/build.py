"""Benchmark ``build``: nbpack bundle building against pyarrow write + zip and astropy VOTable write."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.data import make_catalog, write_csv
from bench.harness import Benchmark, Case, Variant

__all__ = ["BENCHMARK", "prepare", "astropy_table", "load_arrow"]

# The codec nbpack's catalog writer uses (catalog._write_parquet); the fair baseline uses the same.
NBPACK_CODEC = "zstd"
VOTABLE_MAX_ROWS = 10**5  # TABLEDATA write of 1e5 rows already takes ~20-60 s here
CSV_MAX_ROWS = 10**6  # the CSV target is at 1e6; a 1e7-row CSV is ~2.5 GB of text
# Issue 13's targets: time <= 1.25x the pyarrow baseline, peak RSS <= 1.5x its peak RSS.
MAX_RATIO, MAX_RSS_RATIO = 1.25, 1.5


def prepare(rows: int, workdir: Path) -> Case:
    """Make the catalog once per size: an Arrow IPC file (the in-memory input) and a CSV file."""
    arrow = workdir / "catalog.arrow"
    csv = workdir / "catalog.csv"
    table = make_catalog(rows)
    if not arrow.is_file():
        with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    if not csv.is_file() and rows <= CSV_MAX_ROWS:
        write_csv(table, csv)
    return Case(rows, {"arrow": str(arrow), "csv": str(csv), "rows": rows}, table.nbytes, rows)


def load_arrow(path: str) -> pa.Table:
    """Read the prepared Arrow IPC file fully into memory (untimed setup of every variant)."""
    with pa.OSFile(path, "rb") as src:
        return pa.ipc.open_file(src).read_all()


def astropy_table(table: pa.Table) -> Any:
    """The same table as an astropy ``Table`` (masked columns, units; timestamps as ISO strings)."""
    import numpy as np
    from astropy.table import MaskedColumn, Table

    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        meta = table.schema.field(name).metadata or {}
        unit = meta.get(b"unit", b"").decode() or None
        mask = col.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.string())
        if pa.types.is_string(col.type):
            data = np.asarray(col.fill_null("").to_numpy(zero_copy_only=False), dtype=str)
        elif pa.types.is_boolean(col.type):
            data = col.fill_null(False).to_numpy(zero_copy_only=False)
        else:
            data = col.fill_null(0).to_numpy(zero_copy_only=False)
        cols.append(MaskedColumn(data, name=name, mask=mask, unit=unit))
    return Table(cols)


def _zip_stored(src: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", allowZip64=True) as zf:
        zf.write(src, f"catalogs/{src.name}", compress_type=zipfile.ZIP_STORED)


# ---------------------------------------------------------------- variants (run in a fresh process each)


def nbpack_table(params: dict) -> Callable[[], object]:
    """nbpack.bundle.build.build_bundle from an in-memory Arrow table."""
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    table = load_arrow(params["arrow"])
    out = Path(params["tmp"]) / "bundle.zip"
    return lambda: build_bundle(BuildSpec("bench", catalogs=[CatalogInput("sources", table)]), out)


def nbpack_csv(params: dict) -> Callable[[], object]:
    """nbpack.bundle.build.build_bundle from the CSV file."""
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    out = Path(params["tmp"]) / "bundle.zip"
    return lambda: build_bundle(BuildSpec("bench", catalogs=[CatalogInput("sources", params["csv"])]), out)


def _pyarrow_zip(table_of: Callable[[], pa.Table], tmp: Path, codec: str | None) -> Callable[[], object]:
    parquet, out = tmp / "sources.parquet", tmp / "bundle.zip"

    def work() -> None:
        kwargs = {"compression": codec} if codec else {}
        pq.write_table(table_of(), parquet, **kwargs)
        _zip_stored(parquet, out)

    return work


def pyarrow_zip(params: dict) -> Callable[[], object]:
    """pyarrow.parquet.write_table with nbpack's codec, then a STORED zip entry."""
    table = load_arrow(params["arrow"])
    return _pyarrow_zip(lambda: table, Path(params["tmp"]), NBPACK_CODEC)


def pyarrow_zip_default(params: dict) -> Callable[[], object]:
    """pyarrow.parquet.write_table with pyarrow's defaults (snappy), then a STORED zip entry."""
    table = load_arrow(params["arrow"])
    return _pyarrow_zip(lambda: table, Path(params["tmp"]), None)


def pyarrow_csv_zip(params: dict) -> Callable[[], object]:
    """pyarrow.csv.read_csv, write_table with nbpack's codec, STORED zip entry."""
    import pyarrow.csv as pcsv

    return _pyarrow_zip(lambda: pcsv.read_csv(params["csv"]), Path(params["tmp"]), NBPACK_CODEC)


def votable_write(params: dict) -> Callable[[], object]:
    """astropy's VOTable writer (default TABLEDATA serialisation) on the same table."""
    import warnings

    table = astropy_table(load_arrow(params["arrow"]))
    out = Path(params["tmp"]) / "sources.vot"

    def work() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table.write(out, format="votable", overwrite=True)

    return work


BENCHMARK = Benchmark(
    name="build",
    description="bundle building: nbpack build_bundle vs pyarrow write_table + zip, and astropy VOTable write",
    unit="rows",
    small=[10**4],
    default=[10**4, 10**5, 10**6, 10**7],
    prepare=prepare,
    variants=[
        Variant("nbpack_table", "bench.build:nbpack_table"),
        Variant(
            "pyarrow_zip",
            "bench.build:pyarrow_zip",
            "nbpack_table",
            MAX_RATIO,
            note=f"{NBPACK_CODEC}, as nbpack",
            max_rss_ratio=MAX_RSS_RATIO,
        ),
        Variant(
            "pyarrow_zip_default", "bench.build:pyarrow_zip_default", "nbpack_table", note="pyarrow defaults (snappy)"
        ),
        Variant(
            "votable_write",
            "bench.build:votable_write",
            "nbpack_table",
            0.1,
            max_size=VOTABLE_MAX_ROWS,
            note="astropy TABLEDATA",
        ),
        Variant("nbpack_csv", "bench.build:nbpack_csv", max_size=CSV_MAX_ROWS),
        Variant(
            "pyarrow_csv_zip",
            "bench.build:pyarrow_csv_zip",
            "nbpack_csv",
            MAX_RATIO,
            max_size=CSV_MAX_ROWS,
            note="read_csv + write",
            max_rss_ratio=MAX_RSS_RATIO,
        ),
    ],
)
