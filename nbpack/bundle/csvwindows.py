"""A big CSV parsed on every core with bounded memory: byte windows cut at line ends, each parsed by pyarrow's
multi-threaded reader with the column types the first block gave, the next window parsed while the last is written.

pyarrow's streaming reader (``open_csv``) parses one block after another on one thread; ``read_csv`` parses blocks in
parallel but holds the whole table. Here the file is read in windows of ``WINDOW`` bytes, each ending at a newline,
so at most two parsed windows and one raw one are held. Cutting at a newline is what pyarrow itself does between
blocks while ``newlines_in_values`` is off (nbpack never turns it on), so rows are the same; the types are the
streaming reader's (inferred from the first block), so the table, and the Parquet file, are the same too.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

__all__ = ["WINDOW", "splittable", "window_batches"]

WINDOW = 32 << 20  # 8 of pyarrow's 4 MiB blocks: enough for both cores, two parsed windows stay ~0.1-0.2 GiB


def splittable(encoding: str | None) -> bool:
    """True when a newline is the single byte ``\\n`` in this encoding (UTF-8, Latin-1...; not UTF-16/32)."""
    try:
        codecs.lookup(encoding or "utf8")
    except LookupError:
        return False
    return "\n".encode(encoding or "utf8") == b"\n" and "a".encode(encoding or "utf8") == b"a"


def _windows(path: Path, window: int) -> Iterator[bytes]:
    """The file's bytes in pieces of about ``window`` bytes, each but the last ending just after a newline."""
    with open(path, "rb") as fh:
        rest = b""
        while True:
            data = fh.read(window)
            if not data:
                if rest:
                    yield rest
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data  # one line longer than the window: read on
                continue
            rest = data[cut:]
            yield data[:cut]


def window_batches(
    path: Path,
    schema: pa.Schema,
    read_options: Any,
    parse_options: Any,
    convert_options: Any,
    window: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The CSV's rows as record batches of ``schema``: the header line skipped, every window parsed in parallel."""
    import pyarrow.csv as pcsv

    names = schema.names
    types = {f.name: f.type for f in schema}

    def parse(data: bytes, first: bool) -> pa.Table:
        ropts = pcsv.ReadOptions(
            use_threads=True,
            block_size=read_options.block_size,
            encoding=read_options.encoding,
            column_names=names,
            skip_rows=1 if first else 0,
        )
        copts = pcsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=convert_options.strings_can_be_null,
            null_values=convert_options.null_values,
            include_columns=names,
        )
        return pcsv.read_csv(io.BytesIO(data), read_options=ropts, parse_options=parse_options, convert_options=copts)

    def parse_next(pieces: Iterator[bytes], first: bool) -> pa.Table | None:
        data = next(pieces, None)
        return None if data is None else parse(data, first)

    pieces = _windows(path, window or WINDOW)
    # The next window is parsed (on pyarrow's pool, both cores) while the batches of this one are written.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(parse_next, pieces, True)
        while (table := pending.result()) is not None:
            pending = pool.submit(parse_next, pieces, False)
            yield from table.to_batches()
