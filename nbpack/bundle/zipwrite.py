"""The reproducible zip a bundle is: sorted entries, fixed times and modes, the manifest first, written atomically;
and the ``contents`` list of its files' sizes and sha256."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from nbpack.runtime.nbpack_runtime.base import ZIP_TIME
from nbpack.runtime.nbpack_runtime.vocab import MANIFEST

__all__ = ["atomic_zip", "contents_of", "file_sha256", "stat_key", "write_entries", "write_zip"]

# Already-compressed formats are stored, not deflated again: same size, far less CPU.
_STORED_SUFFIXES = (".parquet", ".zip", ".gz", ".png", ".jpg", ".fits.fz")


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contents_of(stage: Path, known: dict[tuple[str, int, int], str] | None = None) -> list[dict[str, Any]]:
    """The manifest's ``contents``: every staged file but the manifest, sorted, with its size and sha256."""
    # ``known`` caches digests by (path, size, mtime): the contents are listed three times per build and
    # re-hashing unchanged catalogs each time was a third of the build time of a large bundle.
    known = {} if known is None else known
    out = []
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        rel = path.relative_to(stage).as_posix()
        if rel != MANIFEST:
            st = path.stat()
            key = (rel, st.st_size, st.st_mtime_ns)
            if key not in known:
                known[key] = file_sha256(path)
            out.append({"path": rel, "bytes": st.st_size, "sha256": known[key]})
    return out


def stat_key(stage: Path, rel: str) -> tuple[str, int, int]:
    """The (path, size, mtime) a digest is cached under in ``contents_of``."""
    st = (stage / rel).stat()
    return rel, st.st_size, st.st_mtime_ns


def _zipinfo(rel: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(rel, ZIP_TIME)
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_STORED if rel.endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
    info.file_size = size
    return info


def write_entries(zf: zipfile.ZipFile, entries: Iterable[tuple[str, int, IO[bytes]]]) -> None:
    """Write (name, size, stream) entries with fixed times and modes; big ones as zip64."""
    for rel, size, src in entries:
        info = _zipinfo(rel, size)
        with zf.open(info, "w", force_zip64=size > (1 << 31)) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def write_zip(stage: Path, out: str | Path | IO[bytes]) -> None:
    """Zip a staged folder reproducibly: sorted entries, fixed times and modes, manifest first."""
    paths = sorted(
        (p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()),
        key=lambda rel: (rel != MANIFEST, rel),
    )

    def entries() -> Iterable[tuple[str, int, IO[bytes]]]:
        for rel in paths:
            with open(stage / rel, "rb") as f:
                yield rel, (stage / rel).stat().st_size, f

    atomic_zip(out, lambda zf: write_entries(zf, entries()))


def atomic_zip(out: str | Path | IO[bytes], fill: Callable[[zipfile.ZipFile], None]) -> None:
    """Open a zip on ``out`` and let ``fill`` write it; a path gets a temp file beside it, fsynced, then renamed."""
    if not isinstance(out, str | Path):
        with zipfile.ZipFile(out, "w", compresslevel=6, allowZip64=True) as zf:
            fill(zf)
        return
    out = Path(out)
    if out.parent.exists() and not out.parent.is_dir():  # mkdir would only say "File exists"
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(out.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compresslevel=6, allowZip64=True) as zf:
                fill(zf)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
