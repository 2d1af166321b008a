"""What every part of the service shares: its configuration, its storage (behind the worker cache of objects that
never change) and this process's cache folder (derived copies only: git repositories, opened return zips, spools).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nbpack.config import Config
from nbpack.store import spool, staging
from nbpack.store.backends import Storage

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """The config, storage and cache folder the service's parts are built over."""

    config: Config
    storage: Storage
    cache_dir: Path

    def tmp_dir(self) -> Path:
        """The spool folder for uploads and builds (local disk, never memory)."""
        path = self.cache_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def receive(self, stream: IO[bytes], limit: int) -> Path:
        """Spool an upload to a temp file on disk (never memory), refusing more than ``limit`` bytes."""
        return spool.receive(stream, limit, self.tmp_dir())

    def receive_staged(
        self,
        stream: IO[bytes],
        limit: int,
        key: str | None,
        observe: Callable[[bytes], None] | None = None,
        announced: int | None = None,
    ) -> staging.Stage:
        """Take an upload in as a staged write of ``key`` (see ``store.staging``): spooled for validation while the
        backend already stores it, visible only on ``commit``; ``key`` None when it is not known yet (then the
        spool is stored on commit). ``announced``: the body's declared length, if any (a small one is held in
        memory, within the process's budget)."""
        stage = staging.begin(self.storage, key, self.tmp_dir(), announced)
        staging.fill(stage, stream, limit, observe)
        return stage

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of one stored object, streamed."""
        return self.storage.iter_chunks(key, 1 << 20, start, end)
