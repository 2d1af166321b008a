"""nbpack/bundle/astropy_header.py: astropy's ``table_meta_yaml`` Parquet header read without astropy — column
metadata onto Arrow fields, ``name`` + ``name.mask`` pairs back into one column with nulls, nothing else touched."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from nbpack.bundle.astropy_header import astropy_layout

BIG = 2**53 + 1

HEADER = """# %ECSV 1.0
---
datatype:
- {name: id, datatype: int64, unit: '', description: "Identifiant, unique"}
- name: flux
  datatype: float64
  unit: mJy
  meta: !!omap
  - {ucd: phot.flux}
  - {utype: 'ssa:x'}
- {name: flux.mask, datatype: bool}
meta: !!omap
- __serialized_columns__:
    flux:
      __class__: astropy.table.column.MaskedColumn
      data: !astropy.table.SerializedColumn {name: flux}
      mask: !astropy.table.SerializedColumn {name: flux.mask}
    t:
      __class__: astropy.time.core.Time
      jd1: !astropy.table.SerializedColumn {name: t.jd1}
"""


def _schema(header: str | bytes | None, *fields: pa.Field) -> pa.Schema:
    meta = None if header is None else {b"table_meta_yaml": header if isinstance(header, bytes) else header.encode()}
    return pa.schema(list(fields), metadata=meta)


FIELDS = (pa.field("id", pa.int64()), pa.field("flux", pa.float64()), pa.field("flux.mask", pa.bool_()))


def test_header_metadata_lands_on_fields_and_the_mask_column_goes() -> None:
    layout = astropy_layout(_schema(HEADER, *FIELDS, pa.field("t.jd1", pa.float64())))
    assert layout.schema.names == ["id", "flux", "t.jd1"]  # a Time mixin keeps its parts
    assert layout.masks == {"flux": "flux.mask"}
    assert layout.schema.field("id").metadata == {b"description": b"Identifiant, unique"}  # an empty unit dropped
    assert layout.schema.field("flux").metadata == {b"unit": b"mJy", b"ucd": b"phot.flux", b"utype": b"ssa:x"}
    assert layout.schema.metadata[b"table_meta_yaml"] == HEADER.encode()


def test_apply_turns_masked_slots_into_nulls_and_keeps_nan_and_big_ints() -> None:
    layout = astropy_layout(_schema(HEADER, *FIELDS))
    batch = pa.record_batch(
        [
            pa.array([BIG, -BIG, 3]),
            pa.array([1e20, math.nan, 2.5]),  # slot 0 holds a fill value under a mask
            pa.array([True, False, None]),  # a null mask slot means "not masked"
        ],
        schema=pa.schema(FIELDS),
    )
    out = layout.apply(batch)
    assert out.schema == layout.schema
    assert out.column("id").to_pylist() == [BIG, -BIG, 3]
    flux = out.column("flux").to_pylist()
    assert flux[0] is None and math.isnan(flux[1]) and flux[2] == 2.5


def test_existing_field_metadata_wins_over_the_header() -> None:
    layout = astropy_layout(_schema(HEADER, pa.field("flux", pa.float64(), metadata={"unit": "Jy"})))
    assert layout.schema.field("flux").metadata == {b"unit": b"Jy", b"ucd": b"phot.flux", b"utype": b"ssa:x"}
    assert layout.masks == {}  # the mask column is not in this schema


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        b"\xff\xfe not utf-8",
        "datatype: [unclosed",
        "- just\n- a list",
        "!!python/object/apply:os.system ['echo pwned']",
    ],
)
def test_a_missing_or_unreadable_header_changes_nothing(header: str | bytes | None) -> None:
    schema = _schema(header, *FIELDS)
    layout = astropy_layout(schema)
    assert layout.schema == schema and layout.masks == {}


def test_python_tags_are_read_as_data_never_run() -> None:
    header = "datatype:\n- !!python/object:os.system {name: id, unit: m}\n"
    layout = astropy_layout(_schema(header, pa.field("id", pa.int64())))
    assert layout.schema.field("id").metadata == {b"unit": b"m"}


@pytest.mark.parametrize(
    "mask_spec",
    [
        "mask: !astropy.table.SerializedColumn {name: other}",  # names a column that is not there
        "mask: !astropy.table.SerializedColumn {name: id}",  # not a bool column
        "",  # no mask at all
    ],
)
def test_a_mask_that_is_not_a_bool_column_present_is_ignored(mask_spec: str) -> None:
    header = (
        "datatype: []\nmeta:\n  __serialized_columns__:\n    flux:\n"
        "      __class__: astropy.table.column.MaskedColumn\n"
        f"      data: !astropy.table.SerializedColumn {{name: flux}}\n      {mask_spec}\n"
    )
    layout = astropy_layout(_schema(header, *FIELDS))
    assert layout.masks == {} and "flux.mask" in layout.schema.names
