"""Table formats and their aliases are defined once (``nbpack.bundle.formats``): the create schema's enum says the same,
every name opens as a file suffix and as ``format``, and a create with such a part works through the app."""

from __future__ import annotations

import io
import json
import math
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from nbpack.bundle import formats
from nbpack.bundle.catalog import read_catalog, write_catalog
from tests.helpers import APP_API_KEY, REPO, astropy_table, reference_table

H = {"X-API-Key": APP_API_KEY}


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    """The table as a file in a canonical format, written by the library that owns the format."""
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "arrow":
        feather.write_feather(table, path)
    elif fmt in ("csv", "tsv"):
        pcsv.write_csv(table, path, pcsv.WriteOptions(delimiter="," if fmt == "csv" else "\t"))
    elif fmt == "json":
        path.write_text(json.dumps(table.to_pylist()), "utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()), "utf-8")
    else:
        assert fmt == "votable", fmt
        astropy_table().write(path, format="votable", overwrite=True)


def test_the_create_schema_enum_is_the_one_definition() -> None:
    doc = json.loads((REPO / "schemas" / "create-request-1.0.schema.json").read_text("utf-8"))
    enum = doc["properties"]["catalogs"]["items"]["properties"]["format"]["enum"]
    assert len(enum) == len(set(enum))
    assert set(enum) == set(formats.NAMES)
    assert len(formats.NAMES) == len(set(formats.NAMES))
    assert set(formats.ALIASES.values()) <= set(formats.FORMATS)


@pytest.mark.parametrize("name", formats.NAMES)
def test_every_name_opens_as_a_suffix_and_as_format(tmp_path: Path, name: str) -> None:
    fmt = formats.canonical(name)
    assert fmt in formats.FORMATS and formats.canonical(name.upper()) == fmt
    assert formats.from_filename(f"x.y.{name}") == fmt
    for path, given in ((tmp_path / f"t.{name}", None), (tmp_path / "t.data", name)):
        _write(reference_table(), path, fmt)
        entry = write_catalog(path, tmp_path / "out.parquet", name="t", fmt=given)
        assert entry["rows"] == 4, (path.name, given)
        assert read_catalog(tmp_path / "out.parquet").column("source_id").to_pylist() == [1, 2, 3, 4]


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    assert formats.canonical("xlsx") is None and formats.from_filename("t.xlsx") is None
    assert formats.from_filename("parquet") is None  # a bare word is not a suffix
    path = tmp_path / "t.xlsx"
    _write(reference_table(), path, "csv")
    with pytest.raises(Exception, match="cannot tell the table format of t.xlsx"):
        write_catalog(path, tmp_path / "out.parquet", name="t")


def _awkward() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([2**53 + 1, 2**62 + 7, -1], pa.int64()),
            "flux": pa.array([math.nan, None, 1.5], pa.float64()),
            "seen": pa.array([datetime(2026, 11, 29, 21, 0, tzinfo=UTC)] * 2 + [None], pa.timestamp("us", tz="UTC")),
            "label": pa.array(["α, β", None, 'M31, "core"']),
        }
    )


@pytest.mark.parametrize(
    ("filename", "fmt"), [("sel.pq", None), ("sel.data", "pq"), ("sel.feather", None), ("sel.bin", "ipc")]
)
def test_create_with_an_alias_part_through_the_app(client, filename: str, fmt: str | None) -> None:  # noqa: ANN001
    buf = io.BytesIO()
    (pq.write_table if formats.canonical(fmt or filename.rsplit(".", 1)[1]) == "parquet" else feather.write_feather)(
        _awkward(), buf
    )
    cat = {"name": "sel", "part": "table", **({"format": fmt} if fmt else {})}
    form = {
        "request": json.dumps({"title": "Alias", "catalogs": [cat]}),
        "table": (io.BytesIO(buf.getvalue()), filename),
    }
    resp = client.post("/api/v1/bundles", data=form, headers=H, content_type="multipart/form-data")
    doc = resp.get_json()
    assert resp.status_code == 201, doc
    download = urlsplit(doc["links"]["download"])
    zipped = client.get(f"{download.path}?{download.query}")
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.get_data())) as zf:
        got = pq.read_table(io.BytesIO(zf.read("catalogs/sel.parquet")))
    assert got.column("id").to_pylist() == [2**53 + 1, 2**62 + 7, -1]
    flux = got.column("flux").to_pylist()
    assert math.isnan(flux[0]) and flux[1] is None and flux[2] == 1.5
    assert got.column("seen").type.tz == "UTC"
    assert got.column("label").to_pylist() == ["α, β", None, 'M31, "core"']
