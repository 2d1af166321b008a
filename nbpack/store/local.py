"""Storage in a local folder: objects as files, written to a ``.tmp-`` file then renamed into place."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from nbpack.errors import Conflict, InvalidInput, NotFound, StorageError
from nbpack.store import api
from nbpack.store.api import CHUNK, TMP_PREFIX, ObjectInfo, check_key, check_prefix, check_range, sized

__all__ = ["LocalStorage"]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalStorage:
    """Objects as files under one folder; writes go to a ``.tmp-`` file then ``os.replace``."""

    supports_presigned_put = False

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()
        self.stager = _FolderStager(self)  # staged writes (store.staging): written in place, renamed on commit

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root / key
        # a symlink inside the root could otherwise lead a key outside it
        if not path.resolve().is_relative_to(self.root):
            raise InvalidInput(f"storage key {key!r} resolves outside the storage folder")
        return path

    def _temp_beside(self, path: Path) -> tuple[int, str]:
        # a concurrent delete may remove the emptied parent between mkdir and mkstemp: retry a little
        for attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise Conflict(f"storage key {self._key_of(path)} lies under an existing object") from None
            try:
                return tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _write_temp(self, path: Path, stream: BinaryIO) -> str:
        fd, tmp = self._temp_beside(path)
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def _info(self, key: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        if not path.is_file():
            raise NotFound(f"no stored object {key}")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream; the object appears only once fully written and synced."""
        path = self._path(key)
        tmp = self._write_temp(path, sized(stream, size))
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            os.unlink(tmp)
            raise Conflict(f"storage key {key} is a prefix of other objects") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return self._info(key, path)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file."""
        with open(path, "rb") as f:
            return self.put_stream(key, f)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store a small byte string."""
        return self.put_stream(key, io.BytesIO(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if absent (hard link fails when the name exists); True if written."""
        path = self._path(key)
        tmp = self._write_temp(path, io.BytesIO(data))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return True

    def read_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and their MD5 as its tag (a content tag: ``put_if_match`` compares the bytes)."""
        data = self.read_bytes(key)
        return data, hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put_if_match(self, key: str, data: bytes, tag: str | None) -> str | None:
        """Replace the object only while its content's MD5 is ``tag`` (None: only if absent); the new tag, or None.

        The compare and the rename happen under an exclusive ``flock`` of the key's folder, which every process on
        this host sharing the folder honours (the writers of one small ledger: held for a read and a rename)."""
        path = self._path(key)
        tmp = self._write_temp(path, io.BytesIO(data))
        try:
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    held = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
                except FileNotFoundError:
                    held = None
                if held != tag:
                    return None
                os.replace(tmp, path)
            finally:
                os.close(fd)  # releases the flock
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads."""
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the caller owns the handle
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        return f

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start..end`` of the object, ``end`` inclusive as in HTTP Range (None = to the end)."""
        check_range(start, end)
        f = self.open(key)
        return self._chunks(f, chunk_size, start, end)

    @staticmethod
    def _chunks(f: BinaryIO, chunk_size: int, start: int, end: int | None) -> Iterator[bytes]:
        with f:
            f.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                data = f.read(chunk_size if left is None else min(chunk_size, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    def read_bytes(self, key: str) -> bytes:
        """Whole object in memory: small objects only."""
        with self.open(key) as f:
            return f.read()

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        """Copy the object to a local path, atomically."""
        info = self.stat(key)
        with self.open(key) as src:
            api.download_atomically(path, lambda out: shutil.copyfileobj(src, out, CHUNK))
        return info

    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and modification time; raises NotFound."""
        return self._info(key, self._path(key))

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """All objects whose key starts with ``prefix`` (string prefix, as on S3), sorted by key."""
        check_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            with contextlib.suppress(NotFound):  # deleted since the walk
                yield self._info(key, self.root / key)

    def delete(self, key: str) -> None:
        """Remove the object (no error if absent) and any folders it leaves empty."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        self._prune(path.parent)

    def _prune(self, parent: Path) -> None:
        """Remove ``parent`` and its ancestors below the root while they are empty."""
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        count = 0
        for info in list(self.list(prefix)):
            self.delete(info.key)
            count += 1
        return count

    def compose(self, key: str, sources: Sequence[tuple[str, int]]) -> ObjectInfo:
        """One object of others (written beside, then renamed into place); a missing source is NotFound."""
        # Every source opened first: a missing one fails before anything is written.
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(self.open(src)) for src, _ in sources]
            return self.put_stream(key, files[0] if len(files) == 1 else cast(BinaryIO, _Chain(files)))

    def touch(self, key: str) -> ObjectInfo:
        """Set the object's modification time to now (raises NotFound): a reused object looks fresh to gc."""
        path = self._path(key)
        try:
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        return self._info(key, path)

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        """Local storage has no presigned URLs."""
        return None

    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None, create_once: bool = False
    ) -> str | None:
        """Local storage has no presigned URLs."""
        return None

    def ping(self) -> None:
        """Raise StorageError unless the folder exists and is writable."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage folder {self.root} is missing or not writable")


class _Chain(io.RawIOBase):
    """Open files read one after the other as one stream."""

    def __init__(self, files: list[BinaryIO]) -> None:
        self._files = files

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while self._files:
            n = self._files[0].readinto(buf)  # type: ignore[attr-defined]
            if n:
                return int(n)
            self._files.pop(0)
        return 0


class _FolderStager:
    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    def stage(self, key: str, spool_dir: Path) -> _FolderStage:
        """Stage ``key``: the bytes are written beside its file (a hidden temp file), renamed into place on commit,
        so they cross the disk once (``spool_dir`` is not needed: the storage folder is the spool)."""
        path = self.storage._path(key)
        fd, tmp = self.storage._temp_beside(path)
        return _FolderStage(self.storage, key, path, fd, Path(tmp))

    def abort_stale(self, prefix: str, before: datetime, *, dry_run: bool = False) -> list[str]:
        """Remove the staged ``.tmp-`` files under ``prefix`` last written before ``before`` (a worker killed
        mid-upload leaves one; LIST never shows it); their paths below the root (``dry_run``: only listed)."""
        check_prefix(prefix)
        found: list[str] = []
        base = self.storage.root / prefix
        for tmp in base.rglob(f"{TMP_PREFIX}*") if base.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):  # committed or removed meanwhile
                if tmp.is_file() and datetime.fromtimestamp(tmp.stat().st_mtime, UTC) < before:
                    found.append(self.storage._key_of(tmp))
                    if not dry_run:
                        tmp.unlink()
        return sorted(found)


class _FolderStage:
    """An object being written into a storage folder: a ``.tmp-`` file beside its final name (see ``stage``)."""

    def __init__(self, storage: LocalStorage, key: str, final: Path, fd: int, tmp: Path) -> None:
        self.storage, self.key, self.final, self.path = storage, key, final, tmp
        self._out = os.fdopen(fd, "wb")
        self._committed = False

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def local(self) -> Path:
        return self.path

    def write(self, data: bytes) -> None:
        self._out.write(data)

    def seal(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def commit(self, key: str) -> ObjectInfo:
        if key != self.key:
            raise ValueError(f"staged for {self.key}, not {key}")
        os.replace(self.path, self.final)
        self._committed = True
        _fsync_dir(self.final.parent)
        return self.storage.stat(key)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        if not self._committed:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.storage._prune(self.final.parent)  # the folders it made for an object that never came
