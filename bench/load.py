"""Benchmark ``load``: the bundle runtime loading a catalog vs pyarrow read_table and astropy VOTable read."""

from __future__ import annotations

import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from bench.build import VOTABLE_MAX_ROWS, astropy_table
from bench.data import make_catalog
from bench.harness import Benchmark, Case, Variant

__all__ = ["BENCHMARK", "prepare"]


def prepare(rows: int, workdir: Path) -> Case:
    """Build one bundle with nbpack, unpack it to a folder, and write the same table as a VOTable."""
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    table = make_catalog(rows)
    folder = workdir / "bundle"
    if not (folder / "nbpack.json").is_file():
        zpath = workdir / "bundle.zip"
        build_bundle(BuildSpec("bench", catalogs=[CatalogInput("sources", table)]), zpath)
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(folder)
    vot = workdir / "sources.vot"
    if rows <= VOTABLE_MAX_ROWS and not vot.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            astropy_table(table).write(vot, format="votable")
    params = {"folder": str(folder), "parquet": str(folder / "catalogs" / "sources.parquet"), "votable": str(vot)}
    return Case(rows, params, table.nbytes, rows)


# ---------------------------------------------------------------- variants (run in a fresh process each)


def nbpack_runtime(params: dict) -> Callable[[], object]:
    """``nbpack_runtime.start(folder).catalog('sources')``, imported from the unpacked bundle (no nbpack)."""
    # pyarrow.parquet is imported up front as in the baseline (~1 s under load): both sides time the read only.
    import pyarrow.parquet  # noqa: F401

    sys.path.insert(0, params["folder"])
    import nbpack_runtime  # the copy inside the bundle folder

    return lambda: nbpack_runtime.start(params["folder"]).catalog("sources")


def pyarrow_read(params: dict) -> Callable[[], object]:
    """pyarrow.parquet.read_table of the same Parquet file."""
    return lambda: pq.read_table(params["parquet"])


def votable_read(params: dict) -> Callable[[], object]:
    """astropy Table.read of the same table as a VOTable (TABLEDATA)."""
    from astropy.table import Table

    def work() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Table.read(params["votable"], format="votable")

    return work


BENCHMARK = Benchmark(
    name="load",
    description="catalog loading: bundle runtime vs pyarrow read_table, and astropy VOTable read",
    unit="rows",
    small=[10**4],
    default=[10**4, 10**5, 10**6],
    prepare=prepare,
    variants=[
        Variant("nbpack_runtime", "bench.load:nbpack_runtime"),
        Variant("pyarrow_read", "bench.load:pyarrow_read", "nbpack_runtime", 1.2, note="same file"),
        Variant(
            "votable_read",
            "bench.load:votable_read",
            "nbpack_runtime",
            max_size=VOTABLE_MAX_ROWS,
            note="astropy TABLEDATA",
        ),
    ],
)
