"""nbpack/bundle/catalog_headers.py: the VOParquet VOTable XML, astropy's ``table_meta_yaml`` and ``table::len::``
keys written for a catalog schema — both headers must parse back, whatever the column names and descriptions hold."""

from __future__ import annotations

import warnings
from pathlib import Path
from xml.etree import ElementTree as ET

import pyarrow as pa
import pytest
import yaml

from nbpack.bundle.catalog import write_catalog
from nbpack.bundle.catalog_headers import ColumnFacts, decoded, schema_metadata

NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"
NO_FACTS = ColumnFacts({}, set(), set())


def _fields(meta: dict[str, str]) -> dict[str, ET.Element]:
    root = ET.fromstring(meta["IVOA.VOTable-Parquet.content"])
    return {f.get("name", ""): f for f in root.iter(f"{NS}FIELD")}


def test_votable_datatypes_per_arrow_type() -> None:
    schema = pa.schema(
        [
            ("i8", pa.int8()),
            ("u8", pa.uint8()),
            ("u16", pa.uint16()),
            ("i64", pa.int64()),
            ("u64", pa.uint64()),
            ("f32", pa.float32()),
            ("f64", pa.float64()),
            ("s", pa.string()),
            ("b", pa.bool_()),
            ("nb", pa.bool_()),
            ("bin", pa.binary()),
            ("ts", pa.timestamp("us", tz="Europe/Amsterdam")),
            ("d", pa.date32()),
            ("dur", pa.duration("ms")),
            ("vec", pa.list_(pa.float32(), 3)),
            ("dec", pa.decimal128(10, 2)),
        ]
    )
    facts = ColumnFacts({"s": 7}, {"nb"}, set())
    fields = _fields(schema_metadata(schema, "t", facts))
    got = {n: (f.get("datatype"), f.get("arraysize"), f.get("xtype")) for n, f in fields.items()}
    assert got == {
        "i8": ("short", None, None),
        "u8": ("unsignedByte", None, None),
        "u16": ("int", None, None),
        "i64": ("long", None, None),
        "u64": ("long", None, None),
        "f32": ("float", None, None),
        "f64": ("double", None, None),
        "s": ("unicodeChar", "7", None),
        "b": ("boolean", None, None),
        "nb": ("char", "*", None),  # a bool column with a null reaches astropy as objects
        "bin": ("unsignedByte", "*", None),
        "ts": ("char", "26", "timestamp"),  # ISO 8601 to microseconds, whatever the zone
        "d": ("char", "10", "timestamp"),
        "dur": ("long", None, None),
        "vec": ("float", "3", None),
        "dec": ("char", "*", None),
    }
    assert fields["dur"].get("unit") == "ms"


def test_units_ucds_descriptions_and_lengths_are_written_and_read_back() -> None:
    meta = {"unit": "deg", "ucd": "pos.eq.ra", "utype": "x:y", "description": "Right ascension, ICRS — « é »"}
    schema = pa.schema([pa.field("ra, deg", pa.float64(), metadata=meta), pa.field("name", pa.string())])
    out = schema_metadata(schema, "cat", ColumnFacts({"name": 12}, set(), set()))
    assert out["IVOA.VOTable-Parquet.version"] == "1.0" and out["table::len::name"] == "12"
    field = _fields(out)["ra, deg"]
    assert (field.get("unit"), field.get("ucd"), field.get("utype")) == ("deg", "pos.eq.ra", "x:y")
    assert field.find(f"{NS}DESCRIPTION").text == meta["description"]  # type: ignore[union-attr]
    header = yaml.safe_load(out["table_meta_yaml"])
    assert header["datatype"][0] == {
        "name": "ra, deg",
        "datatype": "float64",
        "unit": "deg",
        "description": meta["description"],
        "meta": {"ucd": "pos.eq.ra", "utype": "x:y"},
    }
    assert header["datatype"][1] == {"name": "name", "datatype": "string"}
    assert "meta" not in header  # no column needs a cast


def test_control_characters_leave_both_headers_readable() -> None:
    # A bell in a description or a vertical tab in a name once made the VOTable XML not well-formed.
    schema = pa.schema([pa.field("a\x0bb", pa.int64(), metadata={"description": "bell\x07, here", "unit": "m\x00"})])
    out = schema_metadata(schema, "t\x01", NO_FACTS)
    fields = _fields(out)
    assert list(fields) == ["a\ufffdb"]
    assert fields["a\ufffdb"].find(f"{NS}DESCRIPTION").text == "bell\ufffd, here"  # type: ignore[union-attr]
    assert fields["a\ufffdb"].get("unit") == "m\ufffd"
    header = yaml.safe_load(out["table_meta_yaml"])  # JSON escapes keep the YAML exact
    assert header["datatype"][0]["name"] == "a\x0bb" and header["datatype"][0]["description"] == "bell\x07, here"


def test_times_and_binary_are_cast_for_astropy() -> None:
    schema = pa.schema([("t", pa.timestamp("ns", tz="UTC")), ("raw", pa.binary()), ("x", pa.int64())])
    header = yaml.safe_load(
        schema_metadata(schema, "t", NO_FACTS)["table_meta_yaml"].replace("!astropy.table.SerializedColumn", "")
    )
    columns = header["meta"]["__serialized_columns__"]
    assert {n: c["dtype"] for n, c in columns.items()} == {"t": "str", "raw": "object"}
    assert {c["__class__"] for c in columns.values()} == {"astropy.table.column.Column"}


@pytest.mark.parametrize(("meta", "expected"), [(None, {}), ({}, {}), ({b"k": b"\xff\xc3\xa9"}, {"k": "\ufffdé"})])
def test_decoded_replaces_bad_utf8(meta: dict[bytes, bytes] | None, expected: dict[str, str]) -> None:
    assert decoded(meta) == expected


def test_astropys_votable_reader_reads_a_catalog_with_a_control_character(tmp_path: Path) -> None:
    # The reader that consumes this header: before U+FFFD it raised "not well-formed (invalid token)".
    table_cls = pytest.importorskip("astropy.table").Table
    meta = {"description": "bell\x07, é", "unit": "deg"}
    table = pa.table({"ra": pa.array([1.5, None])}, schema=pa.schema([pa.field("ra", pa.float64(), metadata=meta)]))
    write_catalog(table, tmp_path / "c.parquet", name="c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's own notes on the VOTable version
        read = table_cls.read(tmp_path / "c.parquet", format="parquet.votable")
    assert str(read["ra"].unit) == "deg" and read["ra"][0] == 1.5
