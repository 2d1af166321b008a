"""A bounded in-process cache in front of any storage for the objects that never change once written.

Which keys are immutable is the key layout's call (``keys.immutable``): a handle's manifest, notebook and zip head
and tail, and content-addressed parts. Everything else, above all ``handle.json`` (deleting it revokes a handle at
once on every replica), always goes to storage. A handle's keys carry its id, so a cached manifest is per handle.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from cachetools import LRUCache

from nbpack.errors import InvalidInput
from nbpack.store.api import CHUNK, ObjectInfo, Storage, check_range

__all__ = ["CachedStorage", "MAX_BYTES", "MAX_OBJECT"]

# Worker memory the cache may hold, and the largest object it keeps: big members stream from storage as before.
MAX_BYTES = 32 << 20
MAX_OBJECT = 2 << 20


class CachedStorage:
    """``inner`` with reads of immutable keys answered from memory after the first (LRU, bounded in bytes)."""

    def __init__(
        self,
        inner: Storage,
        immutable: Callable[[str], bool],
        *,
        max_bytes: int = MAX_BYTES,
        max_object: int = MAX_OBJECT,
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.supports_presigned_put = inner.supports_presigned_put
        self._immutable = immutable
        self._max_object = min(max_object, max_bytes)
        self._cache: LRUCache[str, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        # Keys found too big to keep: their ranged reads go straight to storage (no read-ahead to tell).
        self._big: LRUCache[str, bool] = LRUCache(maxsize=4096)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe; gunicorn serves from threads

    # -- the cache ---------------------------------------------------------------------------------

    @property
    def cached_bytes(self) -> int:
        """Bytes held now (never more than ``max_bytes``)."""
        with self._lock:
            return int(self._cache.currsize)

    def _get(self, key: str) -> bytes | None:
        if not self._immutable(key):
            return None
        with self._lock:
            return self._cache.get(key)

    def _keep(self, key: str, data: bytes) -> None:
        if self._immutable(key) and len(data) <= self._max_object:
            with self._lock:
                self._cache[key] = data

    def _forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every cached key under ``prefix`` (a deleted handle's objects)."""
        with self._lock:
            for key in [k for k in self._cache if k.startswith(prefix)]:
                self._cache.pop(key, None)

    # -- reads -------------------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        """Whole object; an immutable one from memory after the first read."""
        data = self._get(key)
        if data is None:
            data = self.inner.read_bytes(key)
            self._keep(key, data)
        return data

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive); a read from the start of a small immutable object fills the cache."""
        check_range(start, end)
        data = self._get(key)
        if data is not None:
            return _slices(data, chunk_size, start, end)
        if start or not self._immutable(key):
            return self.inner.iter_chunks(key, chunk_size, start, end)
        if end is None:
            return self._filling(key, self.inner.iter_chunks(key, chunk_size))
        with self._lock:
            big = self._big.get(key, False)
        if big or end >= self._max_object:
            return self.inner.iter_chunks(key, chunk_size, start, end)
        # Callers that know a part's size ask for 0..size-1: one byte more than the cache takes tells a whole
        # small object (kept) from the head of a big one (served, not kept), in the same single request.
        head = b"".join(self.inner.iter_chunks(key, chunk_size, 0, self._max_object))
        if len(head) <= self._max_object:
            self._keep(key, head)
        else:
            with self._lock:
                self._big[key] = True
        return _slices(head, chunk_size, 0, end)

    def _filling(self, key: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        held: list[bytes] | None = []
        size = 0
        for chunk in chunks:
            if held is not None:
                size += len(chunk)
                if size <= self._max_object:
                    held.append(chunk)
                else:
                    held = None  # too big to keep: stream on without holding it
            yield chunk
        # Only a read that ran to the end holds the whole object.
        if held is not None:
            self._keep(key, b"".join(held))

    def open(self, key: str) -> BinaryIO:
        """A reader over the object (from memory when cached)."""
        data = self._get(key)
        return io.BytesIO(data) if data is not None else self.inner.open(key)

    # -- writes drop what they replace -------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store ``data``; an immutable key keeps it (written once, read by the next request)."""
        self._forget(key)
        info = self.inner.put_bytes(key, data)
        self._keep(key, bytes(data))
        return info

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream; a small immutable one in one request and kept (a new handle's head, tail, parts)."""
        self._forget(key)
        if size is None or size > self._max_object or not self._immutable(key):
            return self.inner.put_stream(key, stream, size)
        data = _read_upto(stream, size + 1)
        if len(data) != size:
            raise InvalidInput(f"stream holds {'more' if len(data) > size else 'less'} than its declared size {size}")
        return self.put_bytes(key, data)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file."""
        self._forget(key)
        return self.inner.put_file(key, path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create once."""
        self._forget(key)
        return self.inner.put_if_absent(key, data)

    def compose(self, key: str, sources: Sequence[tuple[str, int]]) -> ObjectInfo:
        """One object of others, inside storage."""
        self._forget(key)
        return self.inner.compose(key, sources)

    def delete(self, key: str) -> None:
        """Remove the object, here and in storage."""
        self._forget(key)
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``, here and in storage."""
        self.forget_prefix(prefix)
        return self.inner.delete_prefix(prefix)

    # -- the rest goes straight to storage ---------------------------------------------------------

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        return self.inner.download_to(key, path)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def touch(self, key: str) -> ObjectInfo:
        return self.inner.touch(key)

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        return self.inner.presigned_get(key, expires, filename)

    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None, create_once: bool = False
    ) -> str | None:
        return self.inner.presigned_put(key, expires, size=size, sha256=sha256, create_once=create_once)

    def ping(self) -> None:
        self.inner.ping()

    def __getattr__(self, name: str) -> Any:
        # Compare-and-swap (read_tagged, put_if_match) passes through here: it is for mutable keys, never kept.
        # Backend-specific attributes (an S3 client, a folder's root) for tools and tests.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n and (data := stream.read(n - got)):
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _slices(data: bytes, chunk_size: int, start: int, end: int | None) -> Iterator[bytes]:
    view = memoryview(data)[start : len(data) if end is None else end + 1]
    for i in range(0, len(view), chunk_size):
        yield bytes(view[i : i + chunk_size])
