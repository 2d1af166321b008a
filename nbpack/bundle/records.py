"""The key of a zip member's record (local header, data, trailer): what content parts are stored under.

A record's key is sha256 over its local header, the sha256 of its data and the bytes after the data (a data
descriptor, if any), each part delimited: a collision-resistant name for the record's exact bytes, computed with one
pass over its data. The data digest is what lets a writer key a record as it writes it (:class:`RecordHasher`), and
lets a stored (uncompressed) member reuse its manifest sha256, so a create hashes each member once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["RecordHasher", "record_key"]

# Record keys of this form; a local header starts ``PK\x03\x04``, so no record's own bytes hash to the same input.
_TAG = b"nbpack-record-2\0"


def record_key(header: bytes, data_sha256: bytes, trailer: Iterable[bytes] = ()) -> str:
    """The key of the record ``header + data + trailer`` whose data has the (binary) sha256 ``data_sha256``;
    ``trailer``: the bytes after the data, in chunks (none from nbpack's own writer)."""
    h = hashlib.sha256(_TAG)
    h.update(len(header).to_bytes(4, "big"))
    h.update(header)
    h.update(data_sha256)
    for chunk in trailer:
        h.update(chunk)
    return h.hexdigest()


class RecordHasher:
    """zipfile's output file, keying each member's record as zipfile writes it (never reading it back).

    zipfile writes a member's local header, then its data, then (on a seekable file) seeks back to rewrite the
    header with the CRC and sizes and seeks to the end again. Between :meth:`begin` and :meth:`end` the first
    write is the header and later writes past it are data; a write at the header's offset after data is the final
    header. ``known`` (the data's sha256, for a stored member whose manifest digest is its data's) skips hashing.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._pos = f.tell()
        self._member: tuple[int, int] | None = None  # (header offset, data offset) of the open member
        self._hash: Any = None
        self._known: bytes | None = None
        self._header = b""
        self.keys: dict[str, str] = {}

    def begin(self, known: str | None = None) -> None:
        """The next write is a member's local header; ``known``: its data's sha256 (hex), when already known."""
        self._member = (self._pos, -1)
        self._known = bytes.fromhex(known) if known else None
        self._hash = None if known else hashlib.sha256()

    def end(self, name: str) -> None:
        """The member zipfile just closed: its record's key is kept under ``name``."""
        assert self._member is not None and self._header, "end() without a written member"
        digest = self._known if self._known is not None else self._hash.digest()
        self.keys[name] = record_key(self._header, digest)
        self._member, self._hash, self._known, self._header = None, None, None, b""

    def write(self, data: Any) -> int:
        member = self._member
        if member is not None:
            start, data_at = member
            if data_at < 0:  # the first header, with CRC and sizes still zero
                self._member = (start, self._pos + len(data))
                self._header = bytes(data)
            elif self._pos == start:  # the header again, now final
                self._header = bytes(data)
            elif self._pos >= data_at and self._hash is not None:
                self._hash.update(data)
        n = self._f.write(data)
        self._pos += len(data)
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos

    def seekable(self) -> bool:
        return True

    def flush(self) -> None:
        self._f.flush()
