"""Text tables (CSV, TSV) and their character encoding: a codec by name, and the error naming the first line that
is not UTF-8 when none was given (pyarrow would type such a column as binary and build on)."""

from __future__ import annotations

import codecs
from pathlib import Path

from nbpack.errors import InvalidTable

__all__ = ["codec_name", "not_utf8"]


def codec_name(filename: str, encoding: str) -> str:
    """Python's name of the codec ``encoding`` names, or InvalidTable."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InvalidTable(f"{filename}: unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None


def not_utf8(path: Path) -> InvalidTable:
    """The error for a text table that is not UTF-8, naming the first line that is not."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, where = 1, ""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            data = decoder.getstate()[0] + chunk  # the error's offsets count the decoder's held-back bytes too
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                line += data.count(b"\n", 0, err.start)
                where = f" at line {line} (byte {data[err.start]:#04x})"
                break
            if not chunk:
                break
            line += chunk.count(b"\n")
    return InvalidTable(
        f"{path.name} is not UTF-8 text{where}: give its encoding, e.g. --encoding latin-1 (or cp1252, utf-16)"
    )
