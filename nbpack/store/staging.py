"""Staged writes: an upload's bytes kept on local disk for validation while the backend already stores them, made
visible (committed) only once every check has passed, discarded otherwise.

A backend offers ``stager.stage(key, spool_dir)`` when it can do better than "spool, then copy": S3 tees the bytes
into a multipart upload of ``key`` (``s3_multipart``), a folder writes them where ``key``'s file goes (a rename
commits). Any other backend gets :class:`SpoolStage`: a temp file in ``spool_dir``, stored by ``put_file`` on commit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from nbpack.errors import TooLarge
from nbpack.store.api import CHUNK, ObjectInfo, Storage

__all__ = ["SpoolStage", "Stage", "begin", "fill"]


class Stage(Protocol):
    """An object being written: ``path`` is its local copy (complete once ``fill`` returns)."""

    path: Path

    def write(self, data: bytes) -> None: ...
    def seal(self) -> None: ...
    def commit(self, key: str) -> ObjectInfo: ...
    def close(self) -> None: ...


def begin(storage: Storage, key: str | None, spool_dir: Path) -> Stage:
    """A stage for ``key`` on ``storage`` (the backend's own when it has one and the key is known already)."""
    stager = getattr(storage, "stager", None) if key is not None else None
    return stager.stage(key, spool_dir) if stager is not None else SpoolStage(storage, spool_dir)


def fill(stage: Stage, stream: IO[bytes], limit: int, observe: Callable[[bytes], None] | None = None) -> Path:
    """Write ``stream`` into ``stage``, refusing more than ``limit`` bytes; the local copy's path. ``observe`` sees
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
    return stage.path


class SpoolStage:
    """The fallback: a temp file in the spool folder, stored whole by ``put_file`` when committed."""

    def __init__(self, storage: Storage, spool_dir: Path) -> None:
        self.storage = storage
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=spool_dir)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")

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
