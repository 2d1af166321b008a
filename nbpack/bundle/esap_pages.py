"""ESAP query pages (``{"results": [...], "service", "query"}``) → one typed Arrow table, plus provenance.

Both row shapes ESAP answers with: IVOA rows (``fields`` + a comma-joined ``result`` string, typed by VOTable
datatype) and plain JSON objects. docs/esap.md describes the formats; nbpack/bundle/catalog.py writes the table.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from nbpack.errors import InvalidTable, one_line

__all__ = ["table_from_esap_results", "table_from_esap_pages"]


def table_from_esap_results(results: list[dict]) -> pa.Table:
    """Turn the ``results`` rows of an ESAP query page into one typed table."""
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InvalidTable("ESAP results must be a list of row objects")
    if not results:
        raise InvalidTable("ESAP results hold no rows")
    if all("fields" in r and "result" in r for r in results):
        return _table_from_ivoa_rows(results)
    return _table_from_plain_rows(results)


def table_from_esap_pages(pages: Iterable[dict]) -> tuple[pa.Table, dict]:
    """Join the pages of one ESAP query into one typed table, plus provenance ``{service, query}``."""
    rows: list[dict] = []
    provenance: dict[str, Any] = {}
    for number, page in enumerate(pages, start=1):
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise InvalidTable(f"ESAP page {number} has no 'results' list")
        rows.extend(page["results"])
        for key in ("service", "query"):
            if key not in provenance and page.get(key):
                provenance[key] = page[key]
    if not rows:
        raise InvalidTable("ESAP pages hold no rows")
    first = rows[0] if isinstance(rows[0], dict) else {}
    if "service" not in provenance:
        service = first.get("service") or first.get("dataset") or first.get("archive")
        if service:
            provenance["service"] = service
    if "query" not in provenance and first.get("query"):
        provenance["query"] = first["query"]
    return table_from_esap_results(rows), provenance


# ---------------------------------------------------------------- ESAP rows

_ESAP_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bit": pa.bool_(),
    "unsignedByte": pa.uint8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "unicodeChar": pa.string(),
    "floatComplex": pa.string(),
    "doubleComplex": pa.string(),
}
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def _table_from_ivoa_rows(rows: list[dict]) -> pa.Table:
    fields = rows[0]["fields"]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, dict) for f in fields):
        raise InvalidTable("ESAP row 0 has no usable 'fields' list")
    names = [str(f.get("name", "")) for f in fields]
    if any(not n for n in names):
        raise InvalidTable("ESAP row 0 has a field without a name")
    types = []
    for f in fields:
        datatype = f.get("datatype") or "char"
        if not isinstance(datatype, str) or datatype not in _ESAP_TYPES:
            raise InvalidTable(f"unknown ESAP datatype {datatype!r} for field {f.get('name')!r}")
        types.append(datatype)
    values: list[list[Any]] = [[] for _ in names]
    for i, row in enumerate(rows):
        row_fields = row["fields"]
        if not isinstance(row_fields, list) or [f.get("name") if isinstance(f, dict) else None for f in row_fields] != [
            f.get("name") for f in fields
        ]:
            raise InvalidTable(f"ESAP row {i} has different fields from row 0")
        parts = _split_result(row["result"], len(names), i)
        for j, text in enumerate(parts):
            values[j].append(_parse_value(text, types[j], names[j], i))
    arrays = []
    schema_fields = []
    for f, name, datatype, column in zip(fields, names, types, values, strict=True):
        arrow_type = _ESAP_TYPES[datatype]
        try:
            arrays.append(pa.array(column, type=arrow_type))
        except (OverflowError, pa.ArrowInvalid):
            raise InvalidTable(f"ESAP field {name!r}: a value does not fit its datatype {datatype!r}") from None
        meta = {k: str(f[k]) for k in ("description", "ucd", "utype", "unit") if f.get(k)}
        meta["datatype"] = datatype
        schema_fields.append(pa.field(name, arrow_type, metadata=meta))
    return pa.Table.from_arrays(arrays, schema=pa.schema(schema_fields))


def _split_result(result: Any, count: int, row: int) -> list[str]:
    if not isinstance(result, str):
        raise InvalidTable(f"ESAP row {row}: 'result' is not a string")
    parts = result.split(",")
    if len(parts) == count:
        return parts
    # A comma inside a value: accept it only when the value is CSV-quoted, never by guessing.
    try:
        quoted = next(csv.reader([result], skipinitialspace=False), [])
    except csv.Error:  # e.g. one value over the csv module's field size limit
        quoted = []
    if len(quoted) == count:
        return quoted
    raise InvalidTable(
        f"ESAP row {row}: 'result' splits into {len(parts)} values for {count} fields (a comma inside a value?)"
    )


def _parse_value(text: str, datatype: str, name: str, row: int) -> Any:
    value = text.strip()
    if datatype in ("char", "unicodeChar", "floatComplex", "doubleComplex"):
        return text if text != "" else None
    if value == "" or value.lower() in ("null", "none", "--"):
        return None
    try:
        if datatype in ("boolean", "bit"):
            low = value.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            if low == "?":
                return None
            raise ValueError(value)
        if datatype in ("float", "double"):
            return float(value)
        if not any(c in value for c in ".eE"):
            return int(value)
        # Decimal, not float: "9007199254740993.0" is an exact long, and a float would round it to ...992.
        exact = Decimal(value)
        # Past 20 digits no integer datatype holds it; checked first so "1e999999999" builds no huge int.
        if not exact.is_finite() or exact.adjusted() > 20 or exact != exact.to_integral_value():
            raise ValueError(value)
        return int(exact)
    except (ValueError, OverflowError, ArithmeticError):
        raise InvalidTable(f"ESAP row {row}, field {name!r}: {text[:40]!r} is not a valid {datatype}") from None


def _table_from_plain_rows(rows: list[dict]) -> pa.Table:
    names = list(dict.fromkeys(k for r in rows for k in r))
    if not names:
        raise InvalidTable("rows hold no columns")
    arrays = []
    for name in names:
        column = [r.get(name) for r in rows]
        try:
            arrays.append(pa.array(column))
        except OverflowError:
            raise InvalidTable(f"column {name!r} holds an integer beyond 64 bits") from None
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InvalidTable(f"column {name!r} mixes value types: {one_line(err)}") from None
    return pa.Table.from_arrays(arrays, names=[str(n) for n in names])
