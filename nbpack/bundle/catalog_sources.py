"""Catalog inputs opened for streaming, one reader per format: Parquet (VOParquet metadata read back), Arrow IPC,
CSV/TSV (an encoding named, or UTF-8 checked), JSON lines, VOTable and FITS (astropy), in-memory Arrow, pandas and
astropy tables, ESAP pages and result rows. ``catalog`` writes what they yield as one Parquet file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pyarrow as pa
import pyarrow.parquet as pq

from nbpack.bundle import csvwindows, formats
from nbpack.bundle.astropy_header import astropy_layout
from nbpack.bundle.catalog_headers import decoded
from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.bundle.text_encoding import codec_name, not_utf8
from nbpack.errors import InvalidTable, NbpackError, one_line

__all__ = ["Source", "open_parquet", "open_source"]

_CSV_BLOCK = 1 << 22


@dataclass
class Source:
    """A table input opened for streaming: its schema, and a way to iterate its batches (again)."""

    schema: pa.Schema
    batches: Callable[[], Iterator[pa.RecordBatch]]
    source_format: str
    reiterable: bool = True
    label: str = "catalog source"
    # Text (CSV, JSON lines) is parsed once: the facts are gathered while writing and the header set at the end.
    one_pass: bool = False
    # A text file read as UTF-8 (no encoding given): where to look for the line that is not.
    text_path: Path | None = None


def open_source(source: Any, fmt: str | None, batch_rows: int, encoding: str | None = None) -> Source:
    if isinstance(source, str | os.PathLike):
        return _open_path(Path(source), fmt, batch_rows, encoding)
    if isinstance(source, pa.Table):
        return _from_table(source, "arrow-table", batch_rows)
    if isinstance(source, pa.RecordBatchReader):
        return Source(source.schema, lambda: iter(source), "record-batches", reiterable=False)
    if isinstance(source, dict | list):
        try:
            table = _table_from_json_doc(source) if isinstance(source, dict) else table_from_esap_results(source)
        except (pa.ArrowException, ValueError, TypeError) as err:  # e.g. a lone surrogate in a field's name or unit
            raise InvalidTable(f"cannot read the rows as a table: {one_line(err)}") from err
        return _from_table(table, "esap-page" if isinstance(source, dict) else "rows", batch_rows)
    kind = f"{type(source).__module__}.{type(source).__name__}"
    if kind.startswith("pandas.") and type(source).__name__ == "DataFrame":
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InvalidTable(f"cannot convert DataFrame: {one_line(err)}") from err
        return _from_table(table, "pandas", batch_rows)
    if kind.startswith("astropy.table.") and hasattr(source, "colnames"):
        return _from_table(_table_from_astropy(source), "astropy", batch_rows)
    raise InvalidTable(f"unsupported catalog source type {kind}")


def _from_table(table: pa.Table, source_format: str, batch_rows: int) -> Source:
    return Source(table.schema, lambda: iter(table.to_batches(max_chunksize=batch_rows)), source_format)


def _open_path(path: Path, fmt: str | None, batch_rows: int, encoding: str | None = None) -> Source:
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
    if encoding is not None:
        if fmt not in ("csv", "tsv"):
            raise InvalidTable(f"{path.name}: an encoding applies to CSV and TSV files, not {fmt}")
        encoding = codec_name(path.name, encoding)
    try:
        source = _open_format(path, fmt, batch_rows, encoding)
    except NbpackError:
        raise
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise InvalidTable(f"cannot read {path.name} as {fmt}: {one_line(err)}") from err
    source.label = path.name
    return source


def _open_format(path: Path, fmt: str, batch_rows: int, encoding: str | None = None) -> Source:
    if fmt == "parquet":
        return open_parquet(path, batch_rows)
    if fmt == "arrow":
        return _open_ipc(path)
    if fmt in ("csv", "tsv"):
        return _open_csv(path, fmt, encoding)
    if fmt == "json":
        with path.open("rb") as fh:
            doc = json.load(fh)
        return _from_table(_table_from_json_doc(doc), "json", batch_rows)
    if fmt == "jsonl":
        return _open_jsonl(path)
    return _from_table(_table_from_astropy(_read_votable(path)), "votable", batch_rows)


def open_parquet(path: Path, batch_rows: int) -> Source:
    schema = pq.read_schema(path)
    schema = _with_voparquet_metadata(schema, pq.ParquetFile(path).metadata.metadata or {})
    layout = astropy_layout(schema)  # units and masks of a file written by astropy's format="parquet"

    def batches() -> Iterator[pa.RecordBatch]:
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_rows):
                yield layout.apply(batch)

    return Source(layout.schema, batches, "parquet")


def _open_ipc(path: Path) -> Source:
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

    return Source(reader.schema, batches, "arrow")


def _open_csv(path: Path, fmt: str, encoding: str | None = None) -> Source:
    import pyarrow.csv as pcsv

    ropts = pcsv.ReadOptions(block_size=_CSV_BLOCK, encoding=encoding or "utf8")
    popts = pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    # Only an empty field is null: pyarrow's default null markers would turn "NaN" (a float NaN, not a missing value)
    # and text such as "NA" or "null" (a source may be called that) into nulls, and a catalog would lose them.
    copts = pcsv.ConvertOptions(strings_can_be_null=True, null_values=[""])

    def open_reader() -> pcsv.CSVStreamingReader:
        return pcsv.open_csv(path, read_options=ropts, parse_options=popts, convert_options=copts)

    try:
        source = _reopening(open_reader, fmt)
        if path.stat().st_size > 2 * csvwindows.WINDOW and csvwindows.splittable(encoding):
            # Big: parsed in parallel windows with the types the streaming reader's first block gave.
            schema = source.schema
            source.batches = lambda: csvwindows.window_batches(path, schema, ropts, popts, copts)
    except pa.ArrowInvalid as err:
        if encoding is None and "utf8" in str(err).lower().replace("-", ""):
            raise not_utf8(path) from None  # in the header line
        raise
    if encoding is None:
        # pyarrow types a column holding bytes that are not UTF-8 as binary and builds on: Latin-1 text would arrive
        # as bytes. Text files have no binary columns, so one is always a wrong encoding: say which line.
        if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in source.schema):
            raise not_utf8(path)
        source.text_path = path
    return source


def _open_jsonl(path: Path) -> Source:
    import pyarrow.json as pjson

    def open_reader() -> Any:
        return pjson.open_json(path, read_options=pjson.ReadOptions(block_size=_CSV_BLOCK))

    return _reopening(open_reader, "jsonl")


def _reopening(open_reader: Callable[[], Any], source_format: str) -> Source:
    """A streamed text source: the reader opened for the schema (its first block parsed) serves the first pass."""
    first = [open_reader()]

    def batches() -> Iterator[pa.RecordBatch]:
        return iter(first.pop() if first else open_reader())

    return Source(first[0].schema, batches, source_format, one_pass=True)


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
            raise InvalidTable(f"cannot read {path.name} as VOTable: {one_line(err)}") from None


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
            raise InvalidTable(f"column {name!r}: {one_line(err)}") from None
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
        meta = {**found.get(field.name, {}), **decoded(field.metadata)}
        fields.append(field.with_metadata(meta) if meta else field)
    return pa.schema(fields, metadata=schema.metadata)
