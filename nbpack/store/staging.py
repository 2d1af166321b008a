"""Staged writes: an upload's bytes kept locally for validation while the backend already stores them, made
visible (committed) only once every check has passed, discarded otherwise.

A backend offers ``stager.stage(key, spool_dir)`` when it can do better than "spool, then copy": S3 tees the bytes
into a multipart upload of ``key`` (``s3_multipart``), a folder writes them where ``key``'s file goes (a rename
commits). Any other backend gets :class:`SpoolStage`: a temp file in ``spool_dir``, stored by ``put_file`` on commit.

A small body whose length is announced (``Content-Length``) is held in memory instead (:class:`MemoryStage`), as
long as the process's :data:`MEMORY_BUDGET` has room for it — decided before a byte is read, so 8 threads of small
uploads cannot hold more than the budget. For a return of a few dozen kB the spool file cost more than its checks:
a temp file made, written, closed, stat'ed, reopened for a PUT that botocore sends with ``Expect: 100-continue``
(one round trip more, as for any file body), then unlinked (bench/README.md, "Small returns kept in memory").
Under one part (:data:`MEMORY_BODY_MAX`) the S3 stage starts no multipart upload anyway, so nothing is lost by
storing the bytes at commit.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from nbpack.errors import TooLarge
from nbpack.store.api import CHUNK, PART_SIZE, ObjectInfo, Storage

__all__ = ["MEMORY_BODY_MAX", "MEMORY_BUDGET", "MemoryStage", "SpoolStage", "Stage", "begin", "fill"]

# A body of at most this many bytes may be held in memory: one S3 part, below which no multipart upload is started.
MEMORY_BODY_MAX = PART_SIZE
# Bytes all of this process's in-memory bodies may hold at once (a body over one read chunk counts twice: its chunks
# are joined into one bytes object when sealed). Past it an upload is spooled to disk as before, never refused. Half
# the worker's 64 MiB RSS-growth target (bench ingest): at 64 MiB, 20 returns of 3.2 MB grew the worker +47 MiB.
MEMORY_BUDGET = 32 << 20


class Stage(Protocol):
    """An object being written; ``local()`` is its local copy, a file or the bytes in memory (complete once ``fill``
    returns), ``size`` its length."""

    @property
    def size(self) -> int: ...
    def local(self) -> Path | IO[bytes]: ...
    def write(self, data: bytes) -> None: ...
    def seal(self) -> None: ...
    def commit(self, key: str) -> ObjectInfo: ...
    def close(self) -> None: ...


def begin(storage: Storage, key: str | None, spool_dir: Path, announced: int | None = None) -> Stage:
    """A stage for ``key`` on ``storage``: in memory when ``announced`` (the body's declared length) is small and the
    budget has room, else the backend's own when it has one and the key is known already, else a spool file."""
    if announced is not None and 0 <= announced <= MEMORY_BODY_MAX:
        charge = _memory_charge(announced)
        if _budget.take(charge):
            return MemoryStage(storage, announced, charge)
    stager = getattr(storage, "stager", None) if key is not None else None
    return stager.stage(key, spool_dir) if stager is not None else SpoolStage(storage, spool_dir)


def _memory_charge(announced: int) -> int:
    return announced if announced <= CHUNK else 2 * announced


class _Budget:
    """Bytes the process's in-memory stages hold, bounded by :data:`MEMORY_BUDGET`."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.held + n > self.limit:
                return False
            self.held += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.held -= n


_budget = _Budget(MEMORY_BUDGET)


def fill(stage: Stage, stream: IO[bytes], limit: int, observe: Callable[[bytes], None] | None = None) -> None:
    """Write ``stream`` into ``stage``, refusing more than ``limit`` bytes. ``observe`` sees
    every chunk as it is written (a check that runs while the bytes arrive).

    On any failure (too large, the client gone mid-body, the backend refusing) the stage is closed: nothing is kept
    locally and nothing becomes visible in storage."""
    total = 0
    try:
        while chunk := stream.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"upload is larger than the limit of {limit} bytes")
            stage.write(chunk)
            if observe is not None:
                observe(chunk)
        stage.seal()
    except BaseException:
        stage.close()
        raise


class SpoolStage:
    """The fallback: a temp file in the spool folder, stored whole by ``put_file`` when committed."""

    def __init__(self, storage: Storage, spool_dir: Path) -> None:
        self.storage = storage
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=spool_dir)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def local(self) -> Path:
        return self.path

    def write(self, data: bytes) -> None:
        self._out.write(data)

    def seal(self) -> None:
        self._out.close()

    def commit(self, key: str) -> ObjectInfo:
        return self.storage.put_file(key, self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        self.path.unlink(missing_ok=True)


class MemoryStage:
    """A small upload held in memory (its ``charge`` taken from the process budget until closed), stored by one
    ``put_bytes`` when committed: no spool file, and a bytes body, which botocore sends without ``Expect``."""

    def __init__(self, storage: Storage, announced: int, charge: int) -> None:
        self.storage, self.announced, self._charge = storage, announced, charge
        self._chunks: list[bytes] = []
        self._size = 0
        self._data: bytes | None = None

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        # The budget was taken for the announced length: a body that runs past it is refused, not held.
        if self._size + len(data) > self.announced:
            raise TooLarge(f"upload is longer than its announced {self.announced} bytes")
        self._chunks.append(bytes(data))
        self._size += len(data)

    def seal(self) -> None:
        self._data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []

    def local(self) -> IO[bytes]:
        if self._data is None:
            raise ValueError("the upload is not sealed")
        return io.BytesIO(self._data)  # shares the bytes object: no copy

    def commit(self, key: str) -> ObjectInfo:
        if self._data is None:
            raise ValueError("the upload is not sealed")
        return self.storage.put_bytes(key, self._data)

    def close(self) -> None:
        self._chunks, self._data = [], None
        if self._charge:
            _budget.give(self._charge)
            self._charge = 0
