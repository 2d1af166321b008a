"""The catalog writer: a table input (opened by ``catalog_sources``) → one Parquet file with column metadata, and
the block digests lazy reads check.

Column metadata (unit, description, ucd, utype, datatype) is kept three ways so every reader finds it:
Arrow field metadata, the IVOA VOParquet 1.0 keys (read by astropy's ``parquet.votable``) and astropy's
``table_meta_yaml`` header (read by astropy's plain ``parquet``). All three are generated here without
astropy, so the bytes do not depend on which optional packages are installed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nbpack.bundle.catalog_headers import ColumnFacts, decoded, schema_metadata
from nbpack.bundle.catalog_sources import Source, open_parquet, open_source

# Re-exported: callers that build catalogs from ESAP pages have imported them from here.
from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.bundle.text_encoding import not_utf8
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

# The unit of a lazy read (docs/design.md "Lazy catalog reads"): the sidecar ``<catalog>.blocks`` holds the sha256 of
# each consecutive block of the catalog, so a partial read is verified block by block. The runtime reads the size
# from the manifest, never from here.
BLOCK_SIZE = 1 << 18  # 256 KiB: see design.md "Lazy catalog reads", Costs
BLOCKS_SUFFIX = ".blocks"


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
    src = open_source(source, fmt, batch_rows, encoding)
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
                src = open_parquet(spool, batch_rows)
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
        raise InvalidTable(f"column {name!r} is a list of {one_line(value)}; only lists of numbers are supported")
    if pa.types.is_nested(t) or pa.types.is_union(t):
        # a type's text carries its field names, which may hold newlines: the message stays one line
        raise InvalidTable(f"column {name!r} holds nested values ({one_line(t)}); flatten it first")
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
    raise InvalidTable(f"column {name!r} has unsupported type {one_line(t)}")


def _no_facts(schema: pa.Schema) -> ColumnFacts:
    """The facts of an empty table: what ``_gather`` raises batch by batch."""
    lengths = dict.fromkeys((f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_binary(f.type)), 1)
    return ColumnFacts(lengths, set(), set())


def _column_facts(src: Source, schema: pa.Schema) -> ColumnFacts:
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
    src: Source,
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
                # One chunk per row group: Parquet's encodings (a dictionary's fallback to plain) follow the chunks,
                # and the bytes must not depend on how the source was parsed (streamed or in windows).
                writer.write_table(table.slice(0, batch_rows).combine_chunks(), row_group_size=batch_rows)
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
                rows += batch_rows
        if pending_rows:
            writer.write_table(
                pa.Table.from_batches(pending, schema=schema).combine_chunks(), row_group_size=batch_rows
            )
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
