"""The storage interface every backend offers: ``Storage``, ``ObjectInfo``, safe keys and the checks backends share.

Objects are immutable and written atomically (visible only when complete). Nothing here reads a whole
object into memory except ``read_bytes``, which is meant for small objects such as manifests.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from nbpack.errors import InvalidInput
from nbpack.runtime.nbpack_runtime.vocab import path_problem

__all__ = [
    "ObjectInfo",
    "Storage",
    "check_key",
    "check_prefix",
    "check_range",
    "download_atomically",
    "sized",
    "CHUNK",
    "PART_SIZE",
    "TMP_PREFIX",
]

CHUNK = 1 << 20
PART_SIZE = 8 << 20
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows about one stored object."""

    key: str
    size: int
    etag: str | None = None
    modified: datetime | None = None
    # The sha256 (hex) the store itself verified the bytes against when they were written (S3's
    # x-amz-checksum-sha256 on a single PUT, on a server found to refuse a wrong one); None when unknown.
    sha256: str | None = None


@runtime_checkable
class Storage(Protocol):
    """The interface every backend offers; keys are ``/``-separated relative strings."""

    url: str
    # What the backend can do, asked of the interface rather than of the class: presigned PUT URLs (direct upload).
    supports_presigned_put: bool

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo: ...
    def put_file(self, key: str, path: Path) -> ObjectInfo: ...
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...
    def put_if_absent(self, key: str, data: bytes) -> bool: ...
    # Compare-and-swap of one small object (a quota ledger): ``read_tagged`` gives its bytes and a tag;
    # ``put_if_match`` replaces it only while it still has that tag (None: only if absent) and gives the new tag,
    # or None when another writer got there first (S3: If-Match / If-None-Match on PUT).
    def read_tagged(self, key: str) -> tuple[bytes, str]: ...
    def put_if_match(self, key: str, data: bytes, tag: str | None) -> str | None: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_chunks(
        self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]: ...
    def read_bytes(self, key: str) -> bytes: ...
    def download_to(self, key: str, path: Path) -> ObjectInfo: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def touch(self, key: str) -> ObjectInfo: ...
    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None: ...
    # ``create_once``: the URL may only create ``key`` (never replace it), and only with the ``sha256`` bytes; None
    # where the backend cannot enforce both.
    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None, create_once: bool = False
    ) -> str | None: ...
    # ``key`` made of ``sources`` ([key, size]) one after the other, inside the store (S3: server-side copies; one
    # source is a copy); a missing source is NotFound and nothing is written.
    def compose(self, key: str, sources: Sequence[tuple[str, int]]) -> ObjectInfo: ...
    def ping(self) -> None: ...


# ---------------------------------------------------------------- keys


def download_atomically(path: Path, fill: Callable[[BinaryIO], None]) -> None:
    """Write the local file ``path`` through ``fill`` into a temp file beside it, then rename it into place: a
    reader sees the old file or the whole new one, and a failed download leaves nothing behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``InvalidInput``."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("storage key is empty")
    if problem := path_problem(key):
        raise InvalidInput(f"storage key {key!r} {problem}")
    for part in key.split("/"):
        # temp names are how unfinished writes are hidden; a real key must never look like one
        if part.startswith(TMP_PREFIX):
            raise InvalidInput(f"storage key {key!r} has a segment starting with {TMP_PREFIX!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix may be empty or end in ``/``; what it has otherwise must be a valid key start."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise InvalidInput(f"invalid byte range start={start} end={end}")


class _SizedReader(io.RawIOBase):
    """Wraps a stream promised to hold exactly ``size`` bytes and fails the read that breaks the promise."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._size, self._seen = stream, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._stream.read(len(buf))
        n = len(data)
        self._seen += n
        if self._seen > self._size:
            raise InvalidInput(f"stream is longer than its declared size {self._size}")
        if n == 0 and self._seen < self._size:
            raise InvalidInput(f"stream ended after {self._seen} of {self._size} declared bytes")
        buf[:n] = data
        return n


def sized(stream: BinaryIO, size: int | None) -> BinaryIO:
    if size is None:
        return stream
    if size < 0:
        raise InvalidInput(f"declared size {size} is negative")
    return io.BufferedReader(_SizedReader(stream, size), CHUNK)
