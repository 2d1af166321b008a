"""Table inputs (files, in-memory tables; ESAP pages via esap_pages.py) → one Parquet file with column metadata.

Column metadata (unit, description, ucd, utype, datatype) is kept three ways so every reader finds it:
Arrow field metadata, the IVOA VOParquet 1.0 keys (read by astropy's ``parquet.votable``) and astropy's
``table_meta_yaml`` header (read by astropy's plain ``parquet``). All three are generated here without
astropy, so the bytes do not depend on which optional packages are installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pyarrow as pa
import pyarrow.parquet as pq

from nbpack.bundle import formats
from nbpack.bundle.astropy_header import astropy_layout
from nbpack.bundle.catalog_headers import ColumnFacts, decoded, schema_metadata

# Re-exported: callers that build catalogs from ESAP pages have imported them from here.
from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.bundle.text_encoding import codec_name, not_utf8
from nbpack.errors import InvalidTable, NbpackError, one_line

__all__ = [
    "META_KEYS",
    "BLOCK_SIZE",
    "BLOCKS_SUFFIX",
    "write_catalog",
    "read_catalog",
    "columns_info",
    "table_from_esap_results",
    "table_from_esap_pages",
]

META_KEYS = ("unit", "description", "ucd", "utype", "datatype")

_CSV_BLOCK = 1 << 22
# The unit of a lazy read (docs/design.md "Lazy catalog reads"): the sidecar ``<catalog>.blocks`` holds the sha256 of
# each consecutive block of the catalog, so a partial read is verified block by block. The runtime reads the size
# from the manifest, never from here.
BLOCK_SIZE = 1 << 18  # 256 KiB: see design.md "Lazy catalog reads", Costs
BLOCKS_SUFFIX = ".blocks"


@dataclass
class _Source:
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


# ---------------------------------------------------------------- public API


def write_catalog(
    source: Any,
    dest: Path,
    *,
    name: str,
    fmt: str | None = None,
    columns: dict[str, dict] | None = None,
    batch_rows: int = 65536,
    encoding: str | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> dict:
    """Write ``source`` as Parquet at ``dest`` and return its manifest catalog entry (without ``path``).

    ``encoding`` is a text file's (CSV, TSV) character encoding; without it the text must be UTF-8. ``on_rows`` is
    told each number of rows written (a progress bar).

    The block digests go beside it, to ``dest`` + ``BLOCKS_SUFFIX``; the entry's ``blocks`` gives their block size.
    """
    dest = Path(dest)
    if batch_rows < 1:
        raise InvalidTable(f"batch_rows must be positive, got {batch_rows}")
    src = _open_source(source, fmt, batch_rows, encoding)
    schema = _target_schema(src.schema, columns or {})
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(dest, ".tmp")
    spool = _temp_path(dest, ".spool")
    try:
        if src.one_pass and not any(pa.types.is_fixed_size_list(f.type) for f in schema):
            facts = _no_facts(schema)
            rows = _write_parquet(src, schema, tmp, batch_rows, late=(name, facts), on_rows=on_rows)
            schema = schema.with_metadata(schema_metadata(schema, name, facts))
        else:
            if not src.reiterable:
                # String lengths need a first pass; a one-shot stream is spooled to disk, not into memory.
                _write_parquet(src, schema, spool, batch_rows)
                src = _open_parquet(spool, batch_rows)
                src.schema, src.source_format = schema, "record-batches"
            facts = _column_facts(src, schema)
            schema = _readable_lists(schema, facts)
            schema = schema.with_metadata(schema_metadata(schema, name, facts))
            rows = _write_parquet(src, schema, tmp, batch_rows, on_rows=on_rows)
        digest, size, blocks = _digests(tmp)
        blocks_path = dest.with_name(dest.name + BLOCKS_SUFFIX)
        blocks_path.write_bytes(blocks)
        os.replace(tmp, dest)
    except NbpackError:
        tmp.unlink(missing_ok=True)
        raise
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        tmp.unlink(missing_ok=True)
        if src.text_path is not None and "utf8" in str(err).lower().replace("-", ""):
            raise not_utf8(src.text_path) from None  # bad bytes past the block the columns were typed from
        raise InvalidTable(f"cannot convert {src.label} to catalog {name!r}: {one_line(err)}") from err
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
        "blocks": {"size": BLOCK_SIZE},
    }


def read_catalog(path: Path | str) -> pa.Table:
    """Read a catalog Parquet file back as a ``pyarrow.Table`` (field metadata included)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidTable(f"catalog file not found: {path}")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InvalidTable(f"cannot read catalog {path.name}: {one_line(err)}") from err


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


# ---------------------------------------------------------------- sources


def _open_source(source: Any, fmt: str | None, batch_rows: int, encoding: str | None = None) -> _Source:
    if isinstance(source, str | os.PathLike):
        return _open_path(Path(source), fmt, batch_rows, encoding)
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
            raise InvalidTable(f"cannot convert DataFrame: {one_line(err)}") from err
        return _from_table(table, "pandas", batch_rows)
    if kind.startswith("astropy.table.") and hasattr(source, "colnames"):
        return _from_table(_table_from_astropy(source), "astropy", batch_rows)
    raise InvalidTable(f"unsupported catalog source type {kind}")


def _from_table(table: pa.Table, source_format: str, batch_rows: int) -> _Source:
    return _Source(table.schema, lambda: iter(table.to_batches(max_chunksize=batch_rows)), source_format)


def _open_path(path: Path, fmt: str | None, batch_rows: int, encoding: str | None = None) -> _Source:
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


def _open_format(path: Path, fmt: str, batch_rows: int, encoding: str | None = None) -> _Source:
    if fmt == "parquet":
        return _open_parquet(path, batch_rows)
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


def _open_csv(path: Path, fmt: str, encoding: str | None = None) -> _Source:
    import pyarrow.csv as pcsv

    def open_reader() -> pcsv.CSVStreamingReader:
        return pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK, encoding=encoding or "utf8"),
            parse_options=pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
            convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
        )

    try:
        source = _reopening(open_reader, fmt)
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


def _open_jsonl(path: Path) -> _Source:
    import pyarrow.json as pjson

    def open_reader() -> Any:
        return pjson.open_json(path, read_options=pjson.ReadOptions(block_size=_CSV_BLOCK))

    return _reopening(open_reader, "jsonl")


def _reopening(open_reader: Callable[[], Any], source_format: str) -> _Source:
    """A streamed text source: the reader opened for the schema (its first block parsed) serves the first pass."""
    first = [open_reader()]

    def batches() -> Iterator[pa.RecordBatch]:
        return iter(first.pop() if first else open_reader())

    return _Source(first[0].schema, batches, source_format, one_pass=True)


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
        meta = {k: v for k, v in decoded(field.metadata).items() if k in META_KEYS}
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


def _no_facts(schema: pa.Schema) -> ColumnFacts:
    """The facts of an empty table: what ``_gather`` raises batch by batch."""
    lengths = dict.fromkeys((f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_binary(f.type)), 1)
    return ColumnFacts(lengths, set(), set())


def _column_facts(src: _Source, schema: pa.Schema) -> ColumnFacts:
    facts = _no_facts(schema)
    if not any(_needs_facts(f.type) for f in schema):
        return facts
    try:
        for batch in src.batches():
            _gather(facts, batch, schema)
    except (pa.ArrowException, ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise InvalidTable(f"cannot read {src.label}: {one_line(err)}") from err
    return facts


def _needs_facts(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_boolean(t) or pa.types.is_fixed_size_list(t)


def _gather(facts: ColumnFacts, batch: pa.RecordBatch, schema: pa.Schema) -> None:
    """Raise ``facts`` to cover one batch: longest strings, bool columns with nulls, fixed lists with a null list."""
    import pyarrow.compute as pc

    for f in schema:
        column = batch.column(f.name)
        if pa.types.is_string(f.type) or pa.types.is_binary(f.type):
            length = (
                pc.utf8_length(column.cast(pa.string()))
                if pa.types.is_string(f.type)
                else pc.binary_length(column.cast(pa.binary()))
            )
            longest = pc.max(length).as_py()
            if longest is not None and longest > facts.lengths[f.name]:
                facts.lengths[f.name] = longest
        elif pa.types.is_boolean(f.type) and column.null_count:
            facts.nullable_bools.add(f.name)
        elif pa.types.is_fixed_size_list(f.type) and column.null_count:
            facts.null_lists.add(f.name)


def _readable_lists(schema: pa.Schema, facts: ColumnFacts) -> pa.Schema:
    """Fixed-size list columns with a null list become variable-length lists, which every reader can take."""
    if not facts.null_lists:
        return schema
    fields = [f.with_type(pa.list_(f.type.value_type)) if f.name in facts.null_lists else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _write_parquet(
    src: _Source,
    schema: pa.Schema,
    path: Path,
    batch_rows: int,
    late: tuple[str, ColumnFacts] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write ``src`` as row groups of ``batch_rows``; with ``late`` (name, facts), gather the facts from the batches
    as they are written and set the header they make in the footer, where Parquet keeps it."""
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
            if late:
                _gather(late[1], pending[-1], schema)
            pending_rows += batch.num_rows
            if on_rows:
                on_rows(batch.num_rows)
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table.slice(0, batch_rows), row_group_size=batch_rows)
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
                rows += batch_rows
        if pending_rows:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=batch_rows)
            rows += pending_rows
        if late:
            final = schema.with_metadata(schema_metadata(schema, late[0], late[1]))
            # ARROW:schema is how pyarrow reads the schema (and its metadata) back: the final one replaces the first.
            arrow_schema = base64.b64encode(final.serialize().to_pybytes()).decode()
            writer.add_key_value_metadata({"ARROW:schema": arrow_schema, **decoded(final.metadata)})
    return rows


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.names != schema.names:
        raise InvalidTable("a batch of the source has different columns from the first")
    arrays = []
    for array, field in zip(batch.columns, schema, strict=True):
        try:
            arrays.append(array if array.type == field.type else array.cast(field.type))
        except (pa.ArrowException, ValueError) as err:
            raise InvalidTable(f"column {field.name!r}: {one_line(err)}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------- small helpers


def _temp_path(dest: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix)
    os.close(fd)
    return Path(name)


def _digests(path: Path) -> tuple[str, int, bytes]:
    """The file's sha256 and size, and its block digests (the ``.blocks`` sidecar), in one read."""
    digest = hashlib.sha256()
    blocks = bytearray()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(BLOCK_SIZE):
            digest.update(chunk)
            blocks += hashlib.sha256(chunk).digest()
            size += len(chunk)
    return digest.hexdigest(), size, bytes(blocks)
