"""The column-metadata headers written into a catalog's Parquet file, generated without astropy.

The IVOA VOParquet 1.0 keys (a VOTable XML, read by astropy's ``parquet.votable``), astropy's ``table_meta_yaml``
(read by astropy's plain ``parquet``) and ``table::len::`` string lengths; nbpack/bundle/catalog.py writes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

import pyarrow as pa

__all__ = ["ColumnFacts", "schema_metadata", "decoded"]

_VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
# Characters XML 1.0 cannot hold even escaped (C0 controls but tab and newlines, lone surrogates, U+FFFE/FFFF):
# ElementTree writes them raw, and one in a column name or description made the whole VOTable header unreadable.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


@dataclass
class ColumnFacts:
    """What the column metadata needs from the data, found in one pass before writing."""

    lengths: dict[str, int]  # longest value per string/binary column: astropy's reader needs it when nulls occur
    nullable_bools: set[str]  # bool columns holding a null: astropy reads them as objects, not bools
    null_lists: set[str]  # fixed-size list columns holding a null list: astropy cannot stack them into 2-d


def decoded(meta: dict[bytes, bytes] | None) -> dict[str, str]:
    if not meta:
        return {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in meta.items()}


def schema_metadata(schema: pa.Schema, name: str, facts: ColumnFacts) -> dict[str, str]:
    meta = {
        "IVOA.VOTable-Parquet.version": "1.0",
        "IVOA.VOTable-Parquet.content": _votable_xml(schema, name, facts),
        "table_meta_yaml": _astropy_yaml(schema),
    }
    for col, length in facts.lengths.items():
        meta[f"table::len::{col}"] = str(length)
    return meta


# astropy's ``parquet.votable`` reader stacks an empty table made from the VOTable FIELDs onto what its plain
# ``parquet`` reader made of the data, and raises TableMergeError when the two numpy kinds differ. The FIELDs
# below are the closest VOTable description whose astropy column stacks with that data; where no FIELD can
# (numpy datetime64 has no VOTable counterpart), ``table_meta_yaml`` asks the plain reader to cast the column.


def _votable_type(
    t: pa.DataType, strlen: int | None = None, has_nulls: bool = False
) -> tuple[str, str | None, str | None]:
    """VOTable (datatype, arraysize, xtype) for an Arrow storage type."""
    if pa.types.is_string(t):
        # A fixed arraysize makes astropy build a numpy str column it can stack with the data.
        return "unicodeChar", str(strlen) if strlen else "*", None
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        datatype, _, _ = _votable_type(t.value_type)
        return datatype, str(t.list_size) if pa.types.is_fixed_size_list(t) else "*", None
    if pa.types.is_boolean(t):
        # A bool column with nulls reaches astropy as objects (True/False/None); a string FIELD stacks with them.
        return ("char", "*", None) if has_nulls else ("boolean", None, None)
    if pa.types.is_integer(t):
        by_width = {8: "short", 16: "short", 32: "int", 64: "long"}
        if pa.types.is_unsigned_integer(t):
            by_width = {8: "unsignedByte", 16: "int", 32: "long", 64: "long"}
        return by_width[t.bit_width], None, None
    if pa.types.is_floating(t):
        return ("double" if t.bit_width == 64 else "float"), None, None
    if pa.types.is_binary(t):
        return "unsignedByte", "*", None
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        # Read back as ISO 8601 strings (see _astropy_cast); a fixed arraysize gives the str column they stack with.
        return "char", str(_ISO_LENGTH[_numpy_time_unit(t)]), "timestamp"
    if pa.types.is_duration(t):
        return "long", None, None
    return "char", "*", None  # decimals and times of day reach astropy as Python objects


_ISO_LENGTH = {"D": 10, "s": 19, "ms": 23, "us": 26, "ns": 29}  # "YYYY-MM-DDThh:mm:ss.fff…" per numpy unit


def _numpy_time_unit(t: pa.DataType) -> str:
    if pa.types.is_date32(t):
        return "D"
    return "ms" if pa.types.is_date64(t) else t.unit


def _astropy_cast(t: pa.DataType) -> str | None:
    """numpy dtype astropy's plain reader is told to cast a column to, so ``parquet.votable`` can stack it."""
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "str"  # datetime64 → ISO 8601, the VOTable form of a timestamp; nulls read as "NaT"
    if pa.types.is_binary(t):
        return "object"  # bytes objects stack with the variable-length unsignedByte FIELD
    return None


def _votable_xml(schema: pa.Schema, name: str, facts: ColumnFacts) -> str:
    ET.register_namespace("", _VOTABLE_NS)
    root = ET.Element(f"{{{_VOTABLE_NS}}}VOTABLE", version="1.4")
    resource = ET.SubElement(root, f"{{{_VOTABLE_NS}}}RESOURCE", type="results")
    table = ET.SubElement(resource, f"{{{_VOTABLE_NS}}}TABLE", name=_xml_text(name))
    for field in schema:
        meta = decoded(field.metadata)
        datatype, arraysize, xtype = _votable_type(
            field.type, facts.lengths.get(field.name), field.name in facts.nullable_bools
        )
        attrs = {"name": _xml_text(field.name), "datatype": datatype}
        if arraysize:
            attrs["arraysize"] = arraysize
        if xtype:
            attrs["xtype"] = xtype
        attrs.update({k: _xml_text(meta[k]) for k in ("unit", "ucd", "utype") if meta.get(k)})
        if pa.types.is_duration(field.type) and "unit" not in attrs:
            attrs["unit"] = field.type.unit
        el = ET.SubElement(table, f"{{{_VOTABLE_NS}}}FIELD", attrs)
        if meta.get("description"):
            ET.SubElement(el, f"{{{_VOTABLE_NS}}}DESCRIPTION").text = _xml_text(meta["description"])
    ET.SubElement(table, f"{{{_VOTABLE_NS}}}PARQUET", type="Parquet-local-XML")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _astropy_yaml(schema: pa.Schema) -> str:
    # JSON flow mappings are valid YAML, so this header needs neither astropy nor PyYAML to write.
    lines = ["# %ECSV 1.0", "---", "datatype:"]
    casts = []
    for field in schema:
        meta = decoded(field.metadata)
        entry: dict[str, Any] = {"name": field.name, "datatype": _ecsv_type(field.type)}
        for key in ("unit", "description"):
            if meta.get(key):
                entry[key] = meta[key]
        extra = {k: meta[k] for k in ("ucd", "utype") if meta.get(k)}
        if extra:
            entry["meta"] = extra
        lines.append("- " + json.dumps(entry, sort_keys=True))
        if _astropy_cast(field.type):
            casts.append(field)
    if casts:
        # astropy rebuilds each listed column as Column(data=<stored column>, dtype=...): a cast, no extra column.
        lines += ["meta:", "  __serialized_columns__:"]
        for field in casts:
            lines += [
                f"    {json.dumps(field.name)}:",
                "      __class__: astropy.table.column.Column",
                f"      data: !astropy.table.SerializedColumn {{name: {json.dumps(field.name)}}}",
                f"      dtype: {_astropy_cast(field.type)}",
            ]
    return "\n".join(lines)


def _ecsv_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return str(t)  # Arrow's integer names (int8 … uint64) are ECSV's
    if pa.types.is_floating(t):
        return f"float{t.bit_width}"  # spelled out: Arrow says "halffloat", "float", "double"
    return "string"
