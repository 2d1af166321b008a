"""Catalog conversion: every input kind round-trips through Parquet with values, types, nulls and units."""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from nbpack.bundle.catalog import (
    columns_info,
    read_catalog,
    table_from_esap_pages,
    table_from_esap_results,
    write_catalog,
)
from nbpack.errors import InvalidTable

UNITS = {"ra": {"unit": "deg", "ucd": "pos.eq.ra", "description": "Right ascension"}}


def _reference() -> pa.Table:
    return pa.table(
        {
            "source_id": pa.array([1, 2, 3, 4], pa.int64()),
            "ra": pa.array([10.5, 11.25, None, 13.0], pa.float64()),
            "flag": pa.array([True, False, None, True]),
            "name": pa.array(["a", None, "c,d", "é"]),
        }
    )


def _check(entry: dict, dest: Path, expected: pa.Table) -> pa.Table:
    got = read_catalog(dest)
    assert got.to_pylist() == expected.to_pylist()
    assert [f.type for f in got.schema] == [f.type for f in expected.schema]
    assert entry["rows"] == expected.num_rows
    assert entry["bytes"] == dest.stat().st_size
    assert {c["name"]: c for c in entry["columns"]}["ra"]["unit"] == "deg"
    assert got.schema.field("ra").metadata[b"unit"] == b"deg"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]
    return got


def _write_rows_file(path: Path, table: pa.Table) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".arrow":
        feather.write_feather(table, path)
    elif path.suffix == ".ipc":
        with pa.ipc.new_stream(path, table.schema) as w:
            for batch in table.to_batches(max_chunksize=1):
                w.write_batch(batch)
    elif path.suffix in (".csv", ".tsv"):
        sep = "\t" if path.suffix == ".tsv" else ","
        pcsv.write_csv(table, path, write_options=pcsv.WriteOptions(delimiter=sep))
    elif path.suffix == ".json":
        path.write_text(json.dumps(table.to_pylist()))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".ipc", ".csv", ".tsv", ".json", ".jsonl"])
def test_file_inputs_round_trip(tmp_path: Path, suffix: str) -> None:
    ref = _reference()
    src = tmp_path / f"in{suffix}"
    _write_rows_file(src, ref)
    out = tmp_path / "out"
    entry = write_catalog(src, out / "c.parquet", name="c", columns=UNITS, batch_rows=3)
    _check(entry, out / "c.parquet", ref)
    assert entry["source_format"] in {suffix.lstrip("."), "arrow"}
    assert pq.ParquetFile(out / "c.parquet").metadata.num_row_groups == 2  # 4 rows in groups of 3


def test_in_memory_inputs_round_trip(tmp_path: Path) -> None:
    import pandas as pd
    from astropy.table import MaskedColumn, Table

    ref = _reference()
    batches = pa.RecordBatchReader.from_batches(ref.schema, ref.to_batches(max_chunksize=1))
    astro = Table()
    astro["source_id"] = ref["source_id"].to_numpy()
    astro["ra"] = MaskedColumn([10.5, 11.25, 0.0, 13.0], mask=[False, False, True, False], unit="deg")
    astro["ra"].meta["ucd"] = "pos.eq.ra"
    astro["flag"] = MaskedColumn([True, False, False, True], mask=[False, False, True, False])
    astro["name"] = MaskedColumn(["a", "", "c,d", "é"], mask=[False, True, False, False])
    sources = {
        "table": ref,
        "reader": batches,
        "rows": ref.to_pylist(),
        "page": {"count": 4, "results": ref.to_pylist()},
        "pandas": pd.DataFrame({"source_id": [1, 2, 3, 4], "ra": [10.5, 11.25, None, 13.0]}),
        "astropy": astro,
    }
    digests = {}
    for kind, source in sources.items():
        dest = tmp_path / kind / "c.parquet"
        cols = UNITS if kind != "astropy" else None
        entry = write_catalog(source, dest, name="c", columns=cols)
        expected = ref if kind != "pandas" else ref.select(["source_id", "ra"])
        _check(entry, dest, expected)
        digests[kind] = entry["sha256"]
    assert read_catalog(tmp_path / "astropy" / "c.parquet").schema.field("ra").metadata[b"ucd"] == b"pos.eq.ra"
    # Output depends on the data, not on how the input was chunked or where it came from.
    assert digests["table"] == digests["reader"] == digests["rows"]


def test_votable_file_round_trip(tmp_path: Path) -> None:
    from astropy.table import Table

    t = Table({"ra": [1.5, 2.5], "n": [3, 4]})
    t["ra"].unit = "deg"
    t["ra"].meta["ucd"] = "pos.eq.ra"
    t["ra"].description = "RA"
    t.write(tmp_path / "in.vot", format="votable")
    entry = write_catalog(tmp_path / "in.vot", tmp_path / "c.parquet", name="c")
    info = {c["name"]: c for c in entry["columns"]}
    assert info["ra"] == {
        "name": "ra",
        "type": "double",
        "nullable": True,
        "unit": "deg",
        "ucd": "pos.eq.ra",
        "description": "RA",
    }
    assert read_catalog(tmp_path / "c.parquet").column("n").to_pylist() == [3, 4]


def test_astropy_readers_get_units_and_ucds(tmp_path: Path) -> None:
    from astropy.table import Table

    sample = resources.files("nbpack.data")
    columns = json.loads(sample.joinpath("sample_sources.columns.json").read_text())
    dest = tmp_path / "sources.parquet"
    with resources.as_file(sample.joinpath("sample_sources.csv")) as csv_path:
        entry = write_catalog(csv_path, dest, name="sources", columns=columns)
    assert entry["rows"] == 50
    types = {c["name"]: c["type"] for c in entry["columns"]}
    assert types == {
        "source_id": "int64",
        "ra": "double",
        "dec": "double",
        "parallax": "double",
        "phot_g_mean_mag": "double",
        "phot_variable_flag": "bool",
        "classification": "string",
    }
    assert read_catalog(dest).column("parallax").null_count > 0
    meta = pq.ParquetFile(dest).metadata.metadata
    assert meta[b"IVOA.VOTable-Parquet.version"] == b"1.0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "guessing string length" or unit warnings
        vo = Table.read(dest, format="parquet.votable")
        plain = Table.read(dest, format="parquet")
    assert len(vo) == 50
    assert str(vo["ra"].unit) == "deg" and vo["ra"].meta["ucd"] == "pos.eq.ra;meta.main"
    assert str(vo["parallax"].unit) == "mas"
    assert vo["source_id"][0] == read_catalog(dest).column("source_id")[0].as_py()
    assert str(plain["dec"].unit) == "deg" and plain["dec"].meta["ucd"] == "pos.eq.dec;meta.main"


def test_parquet_source_keeps_voparquet_metadata(tmp_path: Path) -> None:
    write_catalog(_reference(), tmp_path / "a.parquet", name="a", columns=UNITS)
    entry = write_catalog(tmp_path / "a.parquet", tmp_path / "b" / "b.parquet", name="b")
    assert {c["name"]: c for c in entry["columns"]}["ra"]["ucd"] == "pos.eq.ra"


def _ivoa_row(result: str, query: str = "SELECT * FROM gaia") -> dict:
    fields = [
        {"name": "id", "datatype": "long", "ucd": "meta.id", "description": "", "utype": ""},
        {"name": "mag", "datatype": "float", "ucd": "phot.mag"},
        {"name": "dist", "datatype": "double", "unit": "pc"},
        {"name": "var", "datatype": "boolean"},
        {"name": "n", "datatype": "short"},
        {"name": "label", "datatype": "char"},
        {"name": "z", "datatype": "doubleComplex"},
    ]
    return {"dataset": "gaia.dr3", "result": result, "fields": fields, "query": query, "title": "t", "url": "u"}


def test_esap_pages_are_typed_and_concatenated(tmp_path: Path) -> None:
    page1 = {"requested_page": 1, "pages": 2, "count": 3, "results": [_ivoa_row("1,12.5,100.25,true,3,ab,1+2j")]}
    page2 = {
        "requested_page": 2,
        "pages": 2,
        "count": 3,
        "results": [_ivoa_row("2,,,false,,,"), _ivoa_row('3,NaN,1e3,F,-4,"x, y",')],
    }
    table, provenance = table_from_esap_pages([page1, page2])
    assert provenance == {"service": "gaia.dr3", "query": "SELECT * FROM gaia"}
    assert table.schema.types == [pa.int64(), pa.float32(), pa.float64(), pa.bool_(), pa.int16()] + [pa.string()] * 2
    rows = table.to_pylist()
    assert rows[0] == {"id": 1, "mag": 12.5, "dist": 100.25, "var": True, "n": 3, "label": "ab", "z": "1+2j"}
    assert rows[1] == {"id": 2, "mag": None, "dist": None, "var": False, "n": None, "label": None, "z": None}
    assert rows[2]["label"] == "x, y" and rows[2]["dist"] == 1000.0 and rows[2]["var"] is False
    assert table.schema.field("dist").metadata[b"unit"] == b"pc"
    assert table.schema.field("id").metadata == {b"ucd": b"meta.id", b"datatype": b"long"}
    entry = write_catalog(table, tmp_path / "q.parquet", name="q")
    assert {c["name"]: c for c in entry["columns"]}["mag"] == {
        "name": "mag",
        "type": "float",
        "nullable": True,
        "ucd": "phot.mag",
        "datatype": "float",
    }


def test_esap_plain_rows_union_of_keys() -> None:
    table = table_from_esap_results([{"name": "a", "size": 1}, {"name": "b", "url": "https://x/y"}])
    assert table.column_names == ["name", "size", "url"]
    assert table.column("size").to_pylist() == [1, None]


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([_ivoa_row("1,2,3,true,4,a,b,c")], "row 0"),
        ([_ivoa_row("1,x,3,true,4,a,b")], "'mag'"),
        ([_ivoa_row("1,2,3,maybe,4,a,b")], "'var'"),
        ([{**_ivoa_row("1"), "fields": [{"name": "id", "datatype": "quaternion"}]}], "quaternion"),
        ([{"a": 1}, {"a": "text"}], "'a'"),
        ([], "no rows"),
    ],
)
def test_esap_bad_results_raise(results: list, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        table_from_esap_results(results)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty"),
        ("bad.json", "{not json", "bad.json"),
        ("bad.parquet", "PAR1 not really", "bad.parquet"),
        ("nested.json", '[{"a": {"b": 1}}]', "nested"),
        ("table.txt", "a\n1\n", "fmt="),
        ("ragged.csv", "a,b\n1,2\n3\n", "ragged.csv"),
        ("dup.csv", "a,a\n1,2\n", "two columns"),
    ],
)
def test_bad_files_raise_and_leave_nothing(tmp_path: Path, name: str, content: str, message: str) -> None:
    src = tmp_path / "src" / name
    src.parent.mkdir()
    src.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(InvalidTable, match=message) as info:
        write_catalog(src, out / "c.parquet", name="c")
    assert "\n" not in str(info.value)
    assert not out.exists() or not list(out.iterdir())


def test_late_bad_batch_leaves_no_partial_file(tmp_path: Path) -> None:
    # The first CSV block types column b as int64; a later block holding text must fail cleanly.
    pad = "p" * 30
    lines = ["a,b,c"] + [f"{i},{i},{pad}" for i in range(160_000)] + [f"x,oops,{pad}"]
    src = tmp_path / "big.csv"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(InvalidTable, match="big.csv.*invalid value 'x'") as info:
        write_catalog(src, out / "c.parquet", name="c")
    assert "\n" not in str(info.value)
    assert not list(out.iterdir())


def test_missing_file_unknown_column_and_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(InvalidTable, match="not found"):
        write_catalog(tmp_path / "nope.csv", tmp_path / "c.parquet", name="c")
    with pytest.raises(InvalidTable, match="unknown column"):
        write_catalog(_reference(), tmp_path / "c.parquet", name="c", columns={"dec": {"unit": "deg"}})
    with pytest.raises(InvalidTable, match="unsupported catalog source"):
        write_catalog(42, tmp_path / "c.parquet", name="c")
    with pytest.raises(InvalidTable, match="not found"):
        read_catalog(tmp_path / "c.parquet")
    assert not list(tmp_path.iterdir())


def test_deterministic_and_overwrites(tmp_path: Path) -> None:
    first = write_catalog(_reference(), tmp_path / "a.parquet", name="c", columns=UNITS)
    second = write_catalog(_reference(), tmp_path / "b.parquet", name="c", columns=UNITS)
    assert first["sha256"] == second["sha256"]
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    third = write_catalog(_reference().slice(0, 2), tmp_path / "a.parquet", name="c")
    assert third["rows"] == 2 and third["sha256"] != first["sha256"]


def test_columns_info_reads_field_metadata() -> None:
    schema = pa.schema([pa.field("x", pa.int32(), nullable=False, metadata={"unit": "s", "other": "y"})])
    assert columns_info(schema) == [{"name": "x", "type": "int32", "nullable": False, "unit": "s"}]
