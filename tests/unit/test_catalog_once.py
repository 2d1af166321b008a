"""Issue 13, build: a CSV (or JSON lines) catalog is parsed once, and what it makes is what the two-pass build made:
the same table, the same column metadata and headers, read back by pyarrow and by astropy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from nbpack.bundle import catalog
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

# Awkward on purpose: an id above 2^53, NaN beside null, a tz-aware time, unicode with commas and quotes.
CSV = (
    "source_id,ra,when,name,flag\n"
    '9007199254740993,10.5,2024-01-02T03:04:05+01:00,"Étoile, ""la"" grande",true\n'
    "2,nan,2024-01-02T03:04:06Z,,\n"
    '3,,2024-01-02T03:04:07-05:00,"a,b",false\n'
)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def _same_options_table(path: Path) -> pa.Table:
    """The CSV as the catalog reader parses it, whole, as an in-memory table (the two-pass path's input)."""
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True, null_values=[""]))


def test_csv_is_parsed_once(csv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Path] = []
    real = pcsv.open_csv

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pcsv, "open_csv", counting)
    entry = catalog.write_catalog(csv_file, tmp_path / "out.parquet", name="sources", batch_rows=2)
    assert len(opened) == 1 and entry["rows"] == 3


def test_csv_built_once_equals_the_table_build(csv_file: Path, tmp_path: Path) -> None:
    table = _same_options_table(csv_file)
    once = catalog.write_catalog(csv_file, tmp_path / "once.parquet", name="sources", batch_rows=2)
    twice = catalog.write_catalog(table, tmp_path / "twice.parquet", name="sources", batch_rows=2)
    a, b = pq.read_table(tmp_path / "once.parquet"), pq.read_table(tmp_path / "twice.parquet")
    # Table.equals counts NaN unequal to itself: schemas (with metadata) and values compared as written.
    assert a.schema.equals(b.schema, check_metadata=True) and str(a.to_pylist()) == str(b.to_pylist())
    assert a.schema.metadata == b.schema.metadata and b"table::len::name" in a.schema.metadata
    assert a.schema.metadata[b"table::len::name"] == b"19"  # the longest value, in characters
    assert a.column("source_id").to_pylist()[0] == 9007199254740993
    # Only an empty field is null: "nan" is a float NaN on both paths.
    ra = a.column("ra").to_pylist()
    assert ra[0] == 10.5 and math.isnan(ra[1]) and ra[2] is None and str(b.column("ra").to_pylist()) == str(ra)
    assert a.schema.field("when").type.tz == "UTC"
    for key in ("rows", "columns"):
        assert once[key] == twice[key]
    assert once["source_format"] == "csv"
    # The footer carries the same keys as a file written with the header known up front.
    footer = pq.ParquetFile(tmp_path / "once.parquet").metadata.metadata
    assert set(footer) == set(pq.ParquetFile(tmp_path / "twice.parquet").metadata.metadata)
    # Row groups as batch_rows asks, whatever the reader's blocks.
    assert pq.ParquetFile(tmp_path / "once.parquet").metadata.num_row_groups == 2


def test_csv_bundle_reads_back_in_astropy(csv_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("astropy")
    import warnings

    from astropy.table import Table

    out = tmp_path / "b.zip"
    manifest = build_bundle(BuildSpec(title="CSV once", catalogs=[CatalogInput("sources", csv_file)]), out)
    import zipfile

    with zipfile.ZipFile(out) as zf:
        (tmp_path / "c.parquet").write_bytes(zf.read("catalogs/sources.parquet"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        votable = Table.read(tmp_path / "c.parquet", format="parquet.votable")
        plain = Table.read(tmp_path / "c.parquet", format="parquet")
    assert list(votable["name"])[0] == 'Étoile, "la" grande'
    assert len(plain) == 3 and manifest["catalogs"][0]["rows"] == 3
    assert json.loads(json.dumps(manifest))["catalogs"][0]["source_format"] == "csv"


def test_jsonl_is_parsed_once_too(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1, "s": "x"}\n{"a": 2, "s": null}\n{"a": 3, "s": "longest"}\n')
    entry = catalog.write_catalog(path, tmp_path / "j.parquet", name="rows")
    back = pq.read_table(tmp_path / "j.parquet")
    assert entry["rows"] == 3 and back.schema.metadata[b"table::len::s"] == b"7"
    assert back.column("s").to_pylist() == ["x", None, "longest"]
