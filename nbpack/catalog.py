"""Table inputs (files, in-memory tables, ESAP query pages) → one Parquet file with column metadata.

Column metadata (unit, description, ucd, utype, datatype) is kept three ways so every reader finds it:
Arrow field metadata, the IVOA VOParquet 1.0 keys (read by astropy's ``parquet.votable``) and astropy's
``table_meta_yaml`` header (read by astropy's plain ``parquet``). All three are generated here without
astropy, so the bytes do not depend on which optional packages are installed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pyarrow as pa
import pyarrow.parquet as pq

from nbpack import formats
from nbpack.astropy_header import astropy_layout
from nbpack.errors import InvalidTable, NbpackError

__all__ = [
    "META_KEYS",
    "write_catalog",
    "read_catalog",
    "columns_info",
    "table_from_esap_results",
    "table_from_esap_pages",
]

META_KEYS = ("unit", "description", "ucd", "utype", "datatype")

_CSV_BLOCK = 1 << 22
_VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"


@dataclass
class _Source:
    """A table input opened for streaming: its schema, and a way to iterate its batches (again)."""

    schema: pa.Schema
    batches: Callable[[], Iterator[pa.RecordBatch]]
    source_format: str
    reiterable: bool = True
    label: str = "catalog source"


# ---------------------------------------------------------------- public API


def write_catalog(
    source: Any,
    dest: Path,
    *,
    name: str,
    fmt: str | None = None,
    columns: dict[str, dict] | None = None,
    batch_rows: int = 65536,
) -> dict:
    """Write ``source`` as Parquet at ``dest`` and return its manifest catalog entry (without ``path``)."""
    dest = Path(dest)
    if batch_rows < 1:
        raise InvalidTable(f"batch_rows must be positive, got {batch_rows}")
    src = _open_source(source, fmt, batch_rows)
    schema = _target_schema(src.schema, columns or {})
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(dest, ".tmp")
    spool = _temp_path(dest, ".spool")
    try:
        if not src.reiterable:
            # String lengths need a first pass; a one-shot stream is spooled to disk, not into memory.
            _write_parquet(src, schema, spool, batch_rows)
            src = _open_parquet(spool, batch_rows)
            src.schema, src.source_format = schema, "record-batches"
        facts = _column_facts(src, schema)
        schema = _readable_lists(schema, facts)
        schema = schema.with_metadata(_schema_metadata(schema, name, facts))
        rows = _write_parquet(src, schema, tmp, batch_rows)
        digest, size = _sha256(tmp)
        os.replace(tmp, dest)
    except NbpackError:
        tmp.unlink(missing_ok=True)
        raise
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        tmp.unlink(missing_ok=True)
        raise InvalidTable(f"cannot convert {src.label} to catalog {name!r}: {_one_line(err)}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        spool.unlink(missing_ok=True)
    return {
        "name": name,
        "rows": rows,
        "columns": columns_info(schema),
        "sha256": digest,
        "bytes": size,
        "source_format": src.source_format,
    }


def read_catalog(path: Path | str) -> pa.Table:
    """Read a catalog Parquet file back as a ``pyarrow.Table`` (field metadata included)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidTable(f"catalog file not found: {path}")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InvalidTable(f"cannot read catalog {path.name}: {_one_line(err)}") from err


def columns_info(schema: pa.Schema) -> list[dict]:
    """Describe each column of ``schema`` as a manifest column entry (name, type, nullable, metadata)."""
    out = []
    for field in schema:
        entry: dict[str, Any] = {"name": field.name, "type": str(field.type), "nullable": field.nullable}
        meta = field.metadata or {}
        for key in META_KEYS:
            value = meta.get(key.encode())
            if value:
                entry[key] = value.decode("utf-8")
        out.append(entry)
    return out


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
        number = float(value) if any(c in value for c in ".eE") else int(value)
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError(value)
            number = int(number)
        return number
    except (ValueError, OverflowError):
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
            raise InvalidTable(f"column {name!r} mixes value types: {_one_line(err)}") from None
    return pa.Table.from_arrays(arrays, names=[str(n) for n in names])


# ---------------------------------------------------------------- sources


def _open_source(source: Any, fmt: str | None, batch_rows: int) -> _Source:
    if isinstance(source, str | os.PathLike):
        return _open_path(Path(source), fmt, batch_rows)
    if isinstance(source, pa.Table):
        return _from_table(source, "arrow-table", batch_rows)
    if isinstance(source, pa.RecordBatchReader):
        return _Source(source.schema, lambda: iter(source), "record-batches", reiterable=False)
    if isinstance(source, dict):
        return _from_table(_table_from_json_doc(source), "esap-page", batch_rows)
    if isinstance(source, list):
        return _from_table(table_from_esap_results(source), "rows", batch_rows)
    kind = f"{type(source).__module__}.{type(source).__name__}"
    if kind.startswith("pandas.") and type(source).__name__ == "DataFrame":
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InvalidTable(f"cannot convert DataFrame: {_one_line(err)}") from err
        return _from_table(table, "pandas", batch_rows)
    if kind.startswith("astropy.table.") and hasattr(source, "colnames"):
        return _from_table(_table_from_astropy(source), "astropy", batch_rows)
    raise InvalidTable(f"unsupported catalog source type {kind}")


def _from_table(table: pa.Table, source_format: str, batch_rows: int) -> _Source:
    return _Source(table.schema, lambda: iter(table.to_batches(max_chunksize=batch_rows)), source_format)


def _open_path(path: Path, fmt: str | None, batch_rows: int) -> _Source:
    try:
        found = path.is_file()
    except (OSError, ValueError):  # names too long, with NUL bytes or lone surrogates
        found = False
    if not found:
        raise InvalidTable(f"catalog source not found: {str(path)[:200]!r}")
    fmt = formats.canonical(fmt) if fmt else formats.from_filename(path.name)
    if fmt is None:
        raise InvalidTable(f"cannot tell the table format of {path.name}: give fmt= one of {', '.join(formats.NAMES)}")
    if path.stat().st_size == 0:
        raise InvalidTable(f"catalog source is empty: {path.name}")
    try:
        source = _open_format(path, fmt, batch_rows)
    except NbpackError:
        raise
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise InvalidTable(f"cannot read {path.name} as {fmt}: {_one_line(err)}") from err
    source.label = path.name
    return source


def _open_format(path: Path, fmt: str, batch_rows: int) -> _Source:
    if fmt == "parquet":
        return _open_parquet(path, batch_rows)
    if fmt == "arrow":
        return _open_ipc(path)
    if fmt in ("csv", "tsv"):
        return _open_csv(path, fmt)
    if fmt == "json":
        with path.open("rb") as fh:
            doc = json.load(fh)
        return _from_table(_table_from_json_doc(doc), "json", batch_rows)
    if fmt == "jsonl":
        return _open_jsonl(path)
    return _from_table(_table_from_astropy(_read_votable(path)), "votable", batch_rows)


def _open_parquet(path: Path, batch_rows: int) -> _Source:
    schema = pq.read_schema(path)
    schema = _with_voparquet_metadata(schema, pq.ParquetFile(path).metadata.metadata or {})
    layout = astropy_layout(schema)  # units and masks of a file written by astropy's format="parquet"

    def batches() -> Iterator[pa.RecordBatch]:
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_rows):
                yield layout.apply(batch)

    return _Source(layout.schema, batches, "parquet")


def _open_ipc(path: Path) -> _Source:
    def open_reader() -> Any:
        source = pa.memory_map(str(path))
        try:
            return pa.ipc.open_file(source)
        except pa.ArrowInvalid:
            return pa.ipc.open_stream(pa.memory_map(str(path)))

    reader = open_reader()

    def batches() -> Iterator[pa.RecordBatch]:
        r = open_reader()
        if isinstance(r, pa.ipc.RecordBatchFileReader):
            for i in range(r.num_record_batches):
                yield r.get_batch(i)
        else:
            yield from r

    return _Source(reader.schema, batches, "arrow")


def _open_csv(path: Path, fmt: str) -> _Source:
    import pyarrow.csv as pcsv

    def open_reader() -> pcsv.CSVStreamingReader:
        return pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
            convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
        )

    schema = open_reader().schema
    return _Source(schema, lambda: iter(open_reader()), fmt)


def _open_jsonl(path: Path) -> _Source:
    import pyarrow.json as pjson

    def open_reader() -> Any:
        return pjson.open_json(path, read_options=pjson.ReadOptions(block_size=_CSV_BLOCK))

    schema = open_reader().schema
    return _Source(schema, lambda: iter(open_reader()), "jsonl")


def _table_from_json_doc(doc: Any) -> pa.Table:
    if isinstance(doc, dict):
        if "results" not in doc:
            raise InvalidTable("JSON object is not an ESAP query page (no 'results')")
        return table_from_esap_pages([doc])[0]
    if isinstance(doc, list):
        return table_from_esap_results(doc)
    raise InvalidTable("JSON catalog must be a list of row objects or an ESAP query page")


def _read_votable(path: Path) -> Any:
    try:
        from astropy.table import Table
    except ImportError:
        raise InvalidTable("reading VOTable needs astropy: pip install 'nbpack[astro]'") from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Table.read(path, format="votable")
        except Exception as err:  # astropy raises many unrelated types for a bad file
            raise InvalidTable(f"cannot read {path.name} as VOTable: {_one_line(err)}") from None


def _table_from_astropy(table: Any) -> pa.Table:
    import numpy as np

    arrays, fields = [], []
    for name in table.colnames:
        col = table[name]
        data = np.asarray(getattr(col, "value", col))
        if data.dtype.kind == "O" and len(data) and not isinstance(data[0], str | bytes | type(None)):
            raise InvalidTable(f"column {name!r} holds objects ({type(data[0]).__name__}), not scalars")
        if data.ndim > 1:
            raise InvalidTable(f"column {name!r} is multi-dimensional; only scalar columns are supported")
        mask = np.asarray(getattr(col, "mask", False), dtype=bool)
        if data.dtype.kind == "S":
            data = np.char.decode(data, "utf-8")
        try:
            array = pa.array(data, mask=mask if mask.ndim and mask.any() else None)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InvalidTable(f"column {name!r}: {_one_line(err)}") from None
        meta = {}
        unit = getattr(col, "unit", None)
        if unit is not None:
            meta["unit"] = unit.to_string()
        if getattr(col.info, "description", None):
            meta["description"] = str(col.info.description)
        col_meta = getattr(col.info, "meta", None) or {}
        for key in ("ucd", "utype"):
            if col_meta.get(key):
                meta[key] = str(col_meta[key])
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=meta or None))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _with_voparquet_metadata(schema: pa.Schema, file_meta: dict[bytes, bytes]) -> pa.Schema:
    """Pick up units/UCDs a VOParquet source carries in its XML, where its fields lack them."""
    content = file_meta.get(b"IVOA.VOTable-Parquet.content")
    if not content:
        return schema
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return schema
    found: dict[str, dict[str, str]] = {}
    for el in root.iter():
        name = el.get("name")
        if el.tag.rsplit("}", 1)[-1] != "FIELD" or not name:
            continue
        meta = {k: v for k in ("unit", "ucd", "utype") if (v := el.get(k))}
        for child in el:
            text = (child.text or "").strip()
            if child.tag.rsplit("}", 1)[-1] == "DESCRIPTION" and text:
                meta["description"] = text
        found[name] = meta
    fields = []
    for field in schema:
        meta = {**found.get(field.name, {}), **_decoded(field.metadata)}
        fields.append(field.with_metadata(meta) if meta else field)
    return pa.schema(fields, metadata=schema.metadata)


# ---------------------------------------------------------------- schema and writing


def _target_schema(schema: pa.Schema, columns: dict[str, dict]) -> pa.Schema:
    names = schema.names
    if not names:
        raise InvalidTable("catalog has no columns")
    seen: set[str] = set()
    for n in names:
        if not n:
            raise InvalidTable("catalog has a column without a name")
        if n in seen:
            raise InvalidTable(f"catalog has two columns named {n!r}")
        seen.add(n)
    unknown = sorted(set(columns) - seen)
    if unknown:
        raise InvalidTable(f"column metadata given for unknown column(s): {', '.join(unknown)}")
    fields = []
    for field in schema:
        meta = {k: v for k, v in _decoded(field.metadata).items() if k in META_KEYS}
        extra = columns.get(field.name) or {}
        meta.update({k: str(v) for k, v in extra.items() if k in META_KEYS and v not in (None, "")})
        fields.append(pa.field(field.name, _storage_type(field.name, field.type), metadata=meta or None))
    return pa.schema(fields)


def _storage_type(name: str, t: pa.DataType) -> pa.DataType:
    """The Arrow type a column is stored as; nested values have no VOTable equivalent and are refused."""
    if pa.types.is_dictionary(t):
        return _storage_type(name, t.value_type)
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_time(t):
        # No VOTable type and astropy's Parquet reader raises on it: a time of day is kept as "hh:mm:ss[.ffffff]".
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        value = t.value_type
        if pa.types.is_integer(value) or pa.types.is_floating(value) or pa.types.is_boolean(value):
            return t if not pa.types.is_large_list(t) else pa.list_(value)
        raise InvalidTable(f"column {name!r} is a list of {value}; only lists of numbers are supported")
    if pa.types.is_nested(t) or pa.types.is_union(t):
        raise InvalidTable(f"column {name!r} holds nested values ({t}); flatten it first")
    if (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
    ):
        return t
    raise InvalidTable(f"column {name!r} has unsupported type {t}")


@dataclass
class _ColumnFacts:
    """What the column metadata needs from the data, found in one pass before writing."""

    lengths: dict[str, int]  # longest value per string/binary column: astropy's reader needs it when nulls occur
    nullable_bools: set[str]  # bool columns holding a null: astropy reads them as objects, not bools
    null_lists: set[str]  # fixed-size list columns holding a null list: astropy cannot stack them into 2-d


def _column_facts(src: _Source, schema: pa.Schema) -> _ColumnFacts:
    import pyarrow.compute as pc

    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    binaries = [f.name for f in schema if pa.types.is_binary(f.type)]
    bools = [f.name for f in schema if pa.types.is_boolean(f.type)]
    fixed = [f.name for f in schema if pa.types.is_fixed_size_list(f.type)]
    facts = _ColumnFacts(dict.fromkeys(strings + binaries, 1), set(), set())
    if not (strings or binaries or bools or fixed):
        return facts
    try:
        for batch in src.batches():
            for n in strings + binaries:
                column = batch.column(n)
                length = (
                    pc.utf8_length(column.cast(pa.string()))
                    if n in strings
                    else pc.binary_length(column.cast(pa.binary()))
                )
                longest = pc.max(length).as_py()
                if longest is not None and longest > facts.lengths[n]:
                    facts.lengths[n] = longest
            facts.nullable_bools.update(n for n in bools if batch.column(n).null_count)
            facts.null_lists.update(n for n in fixed if batch.column(n).null_count)
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise InvalidTable(f"cannot read {src.label}: {_one_line(err)}") from err
    return facts


def _readable_lists(schema: pa.Schema, facts: _ColumnFacts) -> pa.Schema:
    """Fixed-size list columns with a null list become variable-length lists, which every reader can take."""
    if not facts.null_lists:
        return schema
    fields = [f.with_type(pa.list_(f.type.value_type)) if f.name in facts.null_lists else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _write_parquet(src: _Source, schema: pa.Schema, path: Path, batch_rows: int) -> int:
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # Dictionary-encode strings only: on unique floats/ints a per-row-group dictionary never pays off and costs
    # ~4x the write time (and a larger file) at 64k-row groups.
    dictionary = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_binary(f.type)] or False
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True, use_dictionary=dictionary) as writer:
        # Row groups of exactly batch_rows rows, so output does not depend on how the source was chunked.
        for batch in src.batches():
            if batch.num_rows == 0:
                continue
            pending.append(_conform(batch, schema))
            pending_rows += batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table.slice(0, batch_rows), row_group_size=batch_rows)
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
                rows += batch_rows
        if pending_rows:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=batch_rows)
            rows += pending_rows
    return rows


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.names != schema.names:
        raise InvalidTable("a batch of the source has different columns from the first")
    arrays = []
    for array, field in zip(batch.columns, schema, strict=True):
        try:
            arrays.append(array if array.type == field.type else array.cast(field.type))
        except (pa.ArrowException, ValueError) as err:
            raise InvalidTable(f"column {field.name!r}: {_one_line(err)}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _schema_metadata(schema: pa.Schema, name: str, facts: _ColumnFacts) -> dict[str, str]:
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


def _votable_xml(schema: pa.Schema, name: str, facts: _ColumnFacts) -> str:
    ET.register_namespace("", _VOTABLE_NS)
    root = ET.Element(f"{{{_VOTABLE_NS}}}VOTABLE", version="1.4")
    resource = ET.SubElement(root, f"{{{_VOTABLE_NS}}}RESOURCE", type="results")
    table = ET.SubElement(resource, f"{{{_VOTABLE_NS}}}TABLE", name=name)
    for field in schema:
        meta = _decoded(field.metadata)
        datatype, arraysize, xtype = _votable_type(
            field.type, facts.lengths.get(field.name), field.name in facts.nullable_bools
        )
        attrs = {"name": field.name, "datatype": datatype}
        if arraysize:
            attrs["arraysize"] = arraysize
        if xtype:
            attrs["xtype"] = xtype
        attrs.update({k: meta[k] for k in ("unit", "ucd", "utype") if meta.get(k)})
        if pa.types.is_duration(field.type) and "unit" not in attrs:
            attrs["unit"] = field.type.unit
        el = ET.SubElement(table, f"{{{_VOTABLE_NS}}}FIELD", attrs)
        if meta.get("description"):
            ET.SubElement(el, f"{{{_VOTABLE_NS}}}DESCRIPTION").text = meta["description"]
    ET.SubElement(table, f"{{{_VOTABLE_NS}}}PARQUET", type="Parquet-local-XML")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _astropy_yaml(schema: pa.Schema) -> str:
    # JSON flow mappings are valid YAML, so this header needs neither astropy nor PyYAML to write.
    lines = ["# %ECSV 1.0", "---", "datatype:"]
    casts = []
    for field in schema:
        meta = _decoded(field.metadata)
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


# ---------------------------------------------------------------- small helpers


def _temp_path(dest: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix)
    os.close(fd)
    return Path(name)


def _decoded(meta: dict[bytes, bytes] | None) -> dict[str, str]:
    if not meta:
        return {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in meta.items()}


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]
