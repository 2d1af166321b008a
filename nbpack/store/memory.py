"""Storage in process memory (``memory://NAME``): the fast tier's backend, never a stand-in for the S3 tests.

It keeps the contract the other backends keep (nbpack/store/api.py): objects appear whole or not at all, a failed
write leaves the old object, ``put_if_absent`` creates once under a lock, ranged reads clamp as HTTP does, and
listing is by string prefix in byte order. Like S3 (and unlike a folder) a key may also be a prefix of other keys.
Stores opened by the same URL share their objects, as two opens of one folder or bucket would.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from nbpack import clock
from nbpack.errors import InvalidInput, NotFound
from nbpack.store.api import CHUNK, TMP_PREFIX, ObjectInfo, check_key, check_prefix, check_range, sized

__all__ = ["MemoryStorage", "open_memory", "SCHEME"]

SCHEME = "memory://"


@dataclass(frozen=True)
class _Object:
    data: bytes
    etag: str
    modified: datetime


class MemoryStorage:
    """Objects as byte strings in a dict, replaced whole under a lock (what a reader holds never changes)."""

    supports_presigned_put = False

    def __init__(self, name: str = "", *, now: Callable[[], datetime] | None = None) -> None:
        self.url = SCHEME + name
        self._now = now or clock.now  # modification times come from the clock (gc's age), injectable in tests
        self._objects: dict[str, _Object] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> _Object:
        check_key(key)
        try:
            return self._objects[key]
        except KeyError:
            raise NotFound(f"no stored object {key}") from None

    def _set(self, key: str, data: bytes) -> ObjectInfo:
        obj = _Object(data, hashlib.md5(data, usedforsecurity=False).hexdigest(), self._now())
        with self._lock:
            self._objects[key] = obj
        return _info(key, obj)

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream; read whole before it replaces anything, so a broken source leaves the old object."""
        check_key(key)
        buf = io.BytesIO()
        source = sized(stream, size)
        while chunk := source.read(CHUNK):
            buf.write(chunk)
        return self._set(key, buf.getvalue())

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file."""
        with open(path, "rb") as f:
            return self.put_stream(key, f)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store a byte string."""
        check_key(key)
        return self._set(key, bytes(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if absent (checked and written under one lock); True if written."""
        check_key(key)
        obj = _Object(bytes(data), hashlib.md5(data, usedforsecurity=False).hexdigest(), self._now())
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = obj
        return True

    def read_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its etag (read together: one object, replaced whole)."""
        obj = self._get(key)
        return obj.data, obj.etag

    def put_if_match(self, key: str, data: bytes, tag: str | None) -> str | None:
        """Replace the object only while its etag is ``tag`` (None: only if absent); the new etag, or None."""
        check_key(key)
        obj = _Object(bytes(data), hashlib.md5(data, usedforsecurity=False).hexdigest(), self._now())
        with self._lock:
            held = self._objects.get(key)
            if (held.etag if held else None) != tag:
                return None
            self._objects[key] = obj
        return obj.etag

    def open(self, key: str) -> BinaryIO:
        """A reader over the object as it is now (a later put does not change what it reads)."""
        return io.BytesIO(self._get(key).data)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start..end`` of the object, ``end`` inclusive as in HTTP Range (None = to the end)."""
        check_range(start, end)
        if chunk_size <= 0:
            raise InvalidInput(f"chunk size {chunk_size} is not positive")
        data = self._get(key).data
        stop = len(data) if end is None else min(len(data), end + 1)
        return (data[i : min(i + chunk_size, stop)] for i in range(start, stop, chunk_size))

    def read_bytes(self, key: str) -> bytes:
        """The whole object."""
        return self._get(key).data

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        """Write the object to a local path via a temp file beside it, atomically."""
        obj = self._get(key)
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(obj.data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return _info(key, obj)

    def stat(self, key: str) -> ObjectInfo:
        """Size, etag (MD5, as S3 gives for a single PUT) and modification time; raises NotFound."""
        return _info(key, self._get(key))

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        check_key(key)
        return key in self._objects

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """All objects whose key starts with ``prefix`` (string prefix, as on S3), sorted by key."""
        check_prefix(prefix)
        with self._lock:
            found = [(k, o) for k, o in self._objects.items() if k.startswith(prefix)]
        for key, obj in sorted(found, key=lambda item: item[0]):
            yield _info(key, obj)

    def delete(self, key: str) -> None:
        """Remove the object; no error if absent."""
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        check_prefix(prefix)
        with self._lock:
            doomed = [k for k in self._objects if k.startswith(prefix)]
            for k in doomed:
                del self._objects[k]
        return len(doomed)

    def touch(self, key: str) -> ObjectInfo:
        """Set the object's modification time to now (raises NotFound): a reused object looks fresh to gc."""
        obj = self._get(key)
        return self._set(key, obj.data)

    def compose(self, key: str, sources: Sequence[tuple[str, int]]) -> ObjectInfo:
        """One object of others (one source: the copy shares its immutable bytes)."""
        check_key(key)
        datas = [self._get(src).data for src, _ in sources]
        return self._set(key, datas[0] if len(datas) == 1 else b"".join(datas))

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        """Memory has no URLs of its own: the service streams the object instead."""
        return None

    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None, create_once: bool = False
    ) -> str | None:
        """Memory has no URLs of its own: uploads go through the service."""
        return None

    def ping(self) -> None:
        """Always reachable."""


def _info(key: str, obj: _Object) -> ObjectInfo:
    return ObjectInfo(key=key, size=len(obj.data), etag=obj.etag, modified=obj.modified)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_named: dict[str, MemoryStorage] = {}
_named_lock = threading.Lock()


def open_memory(url: str) -> MemoryStorage:
    """The process's store for ``memory://NAME`` (created on first use); the same URL gives the same store."""
    name = url[len(SCHEME) :]
    if not _NAME.fullmatch(name):
        raise InvalidInput("memory storage URL must be memory://NAME (letters, digits, '-', '_', '.')")
    with _named_lock:
        if name not in _named:
            _named[name] = MemoryStorage(name)
        return _named[name]
