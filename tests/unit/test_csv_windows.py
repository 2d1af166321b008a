"""A big CSV parsed in parallel windows (nbpack/bundle/csvwindows.py) gives the table, and the Parquet bytes, of the
streaming parse: windows cut at line ends, the header skipped once, the first block's types kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from nbpack.bundle import catalog, csvwindows

AWKWARD = [
    "id,name,mag,when,flag",
    '9007199254740993,"étoile, brillante",17.25,2026-01-01T00:00:00Z,true',
    '9007199254740995,"東京,大阪",NaN,2026-01-01T00:00:01.5Z,false',
    "9007199254740997,,,,",
    '9007199254740999,"a ""quoted"" one",-0.0,2026-12-31T23:59:59Z,true',
]


def _csv(path: Path, rows: int, crlf: bool = False, final_newline: bool = True) -> Path:
    lines = [AWKWARD[0]] + [AWKWARD[1 + i % 4].replace("9007199254740", f"{9007199254740 + i}", 1) for i in range(rows)]
    sep = "\r\n" if crlf else "\n"
    path.write_text(sep.join(lines) + (sep if final_newline else ""), encoding="utf-8")
    return path


@pytest.mark.parametrize("crlf, final_newline", [(False, True), (True, False)])
def test_windows_give_the_table_of_one_whole_parse(tmp_path: Path, crlf: bool, final_newline: bool) -> None:
    path = _csv(tmp_path / "t.csv", 5000, crlf, final_newline)
    whole = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    ropts = pcsv.ReadOptions(block_size=1 << 12)
    popts = pcsv.ParseOptions()
    copts = pcsv.ConvertOptions(strings_can_be_null=True)
    batches = list(csvwindows.window_batches(path, whole.schema, ropts, popts, copts, window=3000))
    assert len(batches) > 10  # many windows
    got = pa.Table.from_batches(batches, schema=whole.schema)
    assert got.num_rows == 5000 and _nan_equal(got, whole)
    assert got.column("id")[0].as_py() == 9007199254740993  # int64 above 2^53 kept exactly


def _nan_equal(a: pa.Table, b: pa.Table) -> bool:
    import pyarrow.compute as pc

    def fill(t: pa.Table) -> pa.Table:
        mag = pc.if_else(pc.is_nan(t["mag"]), pa.scalar(-1.5e300), t["mag"])
        return t.set_column(t.schema.get_field_index("mag"), "mag", mag)

    return fill(a).equals(fill(b))


def test_a_line_longer_than_the_window_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("a,b\n1," + "x" * 10_000 + "\n2,y\n", encoding="utf-8")
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    got = pa.Table.from_batches(
        list(
            csvwindows.window_batches(
                path, schema, pcsv.ReadOptions(), pcsv.ParseOptions(), pcsv.ConvertOptions(), window=100
            )
        ),
        schema=schema,
    )
    assert got.column("a").to_pylist() == [1, 2] and len(got.column("b")[0].as_py()) == 10_000


def test_write_catalog_bytes_do_not_depend_on_windowing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _csv(tmp_path / "t.csv", 20_000)
    streamed, windowed = tmp_path / "s.parquet", tmp_path / "w.parquet"
    catalog.write_catalog(path, streamed, name="t", batch_rows=4096)
    monkeypatch.setattr(csvwindows, "WINDOW", 50_000)  # the file is > 2 windows: the parallel path
    assert path.stat().st_size > 2 * csvwindows.WINDOW
    catalog.write_catalog(path, windowed, name="t", batch_rows=4096)
    assert windowed.read_bytes() == streamed.read_bytes()
    assert pq.read_metadata(windowed).num_rows == 20_000


def test_only_encodings_with_a_one_byte_newline_are_cut() -> None:
    assert csvwindows.splittable(None) and csvwindows.splittable("latin-1") and csvwindows.splittable("utf-8")
    assert not csvwindows.splittable("utf-16") and not csvwindows.splittable("utf-32-le")
    assert not csvwindows.splittable("no-such-codec")
