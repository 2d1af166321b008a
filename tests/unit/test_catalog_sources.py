"""nbpack/bundle/catalog_sources.py: every catalog input opened as a stream of Arrow batches — the values that are
easy to lose (int64 > 2^53, NaN beside null, zoned times, unicode with commas) come through each reader, and what
cannot be read is an InvalidTable naming the file, never another exception."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbpack.bundle.catalog_sources import open_source
from nbpack.errors import InvalidTable
from tests.helpers import astropy_table

BIG = 2**53 + 1
ZONED = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)


def _awkward() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([BIG, -BIG, None], pa.int64()),
            "x": pa.array([math.nan, None, 1.5]),
            "t": pa.array([ZONED, None, ZONED], pa.timestamp("us", tz="Europe/Amsterdam")),
            "s": pa.array(["a, é", "\x07bell", None]),
        }
    )


def _rows(source: object, fmt: str | None = None, batch_rows: int = 2) -> pa.Table:
    src = open_source(source, fmt, batch_rows)
    return pa.Table.from_batches(list(src.batches()), schema=src.schema)


def _same_awkward(table: pa.Table) -> None:
    assert table.column("id").to_pylist() == [BIG, -BIG, None]
    x = table.column("x").to_pylist()
    assert math.isnan(x[0]) and x[1:] == [None, 1.5]
    assert table.schema.field("t").type == pa.timestamp("us", tz="Europe/Amsterdam")
    assert table.column("t").to_pylist()[0] == ZONED
    assert table.column("s").to_pylist() == ["a, é", "\x07bell", None]


def test_parquet_and_arrow_files_and_streams_keep_awkward_values(tmp_path: Path) -> None:
    table = _awkward()
    pq.write_table(table, tmp_path / "a.parquet")
    with pa.OSFile(str(tmp_path / "a.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "s.arrows"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    for path, fmt in ((tmp_path / "a.parquet", None), (tmp_path / "a.arrow", None), (tmp_path / "s.arrows", "arrow")):
        src = open_source(path, fmt, 2)
        assert src.label == path.name and src.reiterable
        _same_awkward(pa.Table.from_batches(list(src.batches())))
        _same_awkward(pa.Table.from_batches(list(src.batches())))  # again: a second pass reads the same


def test_voparquet_units_are_picked_up_where_fields_lack_them(tmp_path: Path) -> None:
    xml = (
        '<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra"><DESCRIPTION> Right ascension, é </DESCRIPTION>'
        '</FIELD><FIELD name="dec" datatype="double" unit="rad"/></TABLE></RESOURCE></VOTABLE>'
    )
    schema = pa.schema(
        [pa.field("ra", pa.float64()), pa.field("dec", pa.float64(), metadata={"unit": "deg"})],
        metadata={"IVOA.VOTable-Parquet.content": xml},
    )
    pq.write_table(pa.table({"ra": [1.0], "dec": [2.0]}, schema=schema), tmp_path / "vo.parquet")
    src = open_source(tmp_path / "vo.parquet", None, 10)
    assert src.schema.field("ra").metadata == {
        b"unit": b"deg",
        b"ucd": b"pos.eq.ra",
        b"description": b"Right ascension, \xc3\xa9",
    }
    assert src.schema.field("dec").metadata == {b"unit": b"deg"}  # the field's own unit wins


def test_csv_types_big_ints_and_keeps_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f'id,name\n{BIG},"a, é"\n-1,\n', "utf-8")
    src = open_source(path, None, 10)
    assert src.one_pass and src.text_path == path  # parsed once; its header is set after writing
    table = pa.Table.from_batches(list(src.batches()))
    assert table.column("id").to_pylist() == [BIG, -1] and table.column("name").to_pylist() == ["a, é", None]
    again = pa.Table.from_batches(list(src.batches()))  # the second pass reopens the file
    assert again.equals(table)


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,name\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidTable, match="line 3"):
        open_source(path, None, 10)
    src = open_source(path, None, 10, encoding="latin-1")
    assert pa.Table.from_batches(list(src.batches())).column("name").to_pylist() == ["ok", "café"]


def test_tsv_and_json_lines(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx, y\n", "utf-8")
    assert _rows(tmp_path / "t.tsv").to_pylist() == [{"a": 1, "b": "x, y"}]
    (tmp_path / "t.jsonl").write_text(f'{{"id": {BIG}, "s": "é"}}\n{{"id": 2, "s": null}}\n', "utf-8")
    assert _rows(tmp_path / "t.jsonl").to_pylist() == [{"id": BIG, "s": "é"}, {"id": 2, "s": None}]


def test_in_memory_sources(tmp_path: Path) -> None:
    _same_awkward(_rows(_awkward()))
    reader = pa.RecordBatchReader.from_batches(_awkward().schema, _awkward().to_batches())
    src = open_source(reader, None, 2)
    assert src.reiterable is False and src.source_format == "record-batches"
    assert _rows([{"a": BIG, "b": "é, x"}]).to_pylist() == [{"a": BIG, "b": "é, x"}]
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"id": [BIG, 2], "x": [math.nan, 1.0]})
    table = _rows(frame)
    # pandas' NaN is its missing value: Arrow's from_pandas makes it a null, as pandas users expect.
    assert table.column("id").to_pylist() == [BIG, 2] and table.column("x").to_pylist() == [None, 1.0]


def test_an_astropy_table_keeps_masks_and_units() -> None:
    table = _rows(astropy_table())
    assert table.column("ra").null_count == 1
    assert table.schema.field("ra").metadata[b"unit"] == b"deg"


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message"),
    [
        ("t.csv", b"", None, "catalog source is empty: t.csv"),
        ("t.weird", b"x", None, "cannot tell the table format of t.weird"),
        ("t.parquet", b"not parquet at all", None, "cannot read t.parquet as parquet"),
        ("t.json", b'{"rows": []}', None, "not an ESAP query page"),
        ("t.json", b"5", None, "must be a list of row objects"),
        ("t.json", b"{", None, "cannot read t.json as json"),
        ("t.parquet", b"x", "csv", "an encoding applies to CSV"),
    ],
)
def test_unreadable_files_are_invalid_tables_naming_them(
    tmp_path: Path, name: str, content: bytes, fmt: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    encoding = "latin-1" if message.startswith("an encoding") else None
    with pytest.raises(InvalidTable, match=message):
        open_source(path, None if encoding else fmt, 10, encoding=encoding)


@pytest.mark.parametrize("path", ["/nonexistent/t.csv", "a\x00b.csv", "x" * 5000 + ".csv", "\udcff.csv"])
def test_paths_that_name_no_file_are_not_found(path: str) -> None:
    with pytest.raises(InvalidTable, match="catalog source not found"):
        open_source(path, None, 10)


def test_an_unsupported_object_is_refused_by_type() -> None:
    with pytest.raises(InvalidTable, match="unsupported catalog source type builtins.int"):
        open_source(5, None, 10)


@pytest.mark.parametrize("window", [None, 64])
def test_csv_nulls_are_empty_fields_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int | None) -> None:
    """NaN stays a float NaN beside an empty (null) field; "NA", "null", "N/A" stay text; streamed and windowed."""
    if window:  # force the parallel-window path on a small file
        monkeypatch.setattr("nbpack.bundle.csvwindows.WINDOW", window)
    rows = [
        f"{BIG + i},{x},{name}"
        for i in range(40)
        for x, name in [("NaN", "NA"), ("", "null"), ("1.5", "N/A"), ("nan", "")]
    ]
    path = tmp_path / "t.csv"
    path.write_text("id,x,name\n" + "\n".join(rows) + "\n", "utf-8")
    src = open_source(path, None, 10)
    if window:
        assert path.stat().st_size > 2 * window  # the windowed path was taken
    table = pa.Table.from_batches(list(src.batches()), schema=src.schema)
    x, names = table.column("x").to_pylist(), table.column("name").to_pylist()
    assert [v is None for v in x[:4]] == [False, True, False, False] and math.isnan(x[0]) and math.isnan(x[3])
    assert names[:4] == ["NA", "null", "N/A", None]
    assert table.num_rows == 160 and table.column("id").to_pylist()[0] == BIG
