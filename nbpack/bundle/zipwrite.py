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
from typing import IO, Any, cast

from nbpack.bundle.records import RecordHasher
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


def write_entries(
    zf: zipfile.ZipFile,
    entries: Iterable[tuple[str, int, IO[bytes]]],
    records: RecordHasher | None = None,
    known: dict[str, str] | None = None,
) -> None:
    """Write (name, size, stream) entries with fixed times and modes; big ones as zip64."""
    # ``records`` keys every record but the manifest's as it is written; ``known``: member sha256s (a stored
    # member's data is its content, so its manifest digest is its data's and it is not hashed again).
    for rel, size, src in entries:
        info = _zipinfo(rel, size)
        keyed = records is not None and rel != MANIFEST
        if records is not None and keyed:
            stored = info.compress_type == zipfile.ZIP_STORED
            records.begin((known or {}).get(rel) if stored else None)
        with zf.open(info, "w", force_zip64=size > (1 << 31)) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if records is not None and keyed:
            records.end(rel)


def write_zip(stage: Path, out: str | Path | IO[bytes], known: dict[str, str] | None = None) -> dict[str, str]:
    """Zip a staged folder reproducibly: sorted entries, fixed times and modes, manifest first; the record keys
    (``records.record_key``) of its members but the manifest, by name. ``known``: member sha256s by path."""
    paths = sorted(
        (p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()),
        key=lambda rel: (rel != MANIFEST, rel),
    )

    def entries() -> Iterable[tuple[str, int, IO[bytes]]]:
        for rel in paths:
            with open(stage / rel, "rb") as f:
                yield rel, (stage / rel).stat().st_size, f

    return atomic_zip(out, lambda zf, records: write_entries(zf, entries(), records, known))


def atomic_zip(
    out: str | Path | IO[bytes], fill: Callable[[zipfile.ZipFile, RecordHasher | None], None]
) -> dict[str, str]:
    """Open a zip on ``out`` and let ``fill(zf, records)`` write it; a path gets a temp file beside it, fsynced, then
    renamed. The record keys come back (none for a stream zipfile cannot seek)."""
    if not isinstance(out, str | Path):
        records = RecordHasher(out) if out.seekable() else None
        with zipfile.ZipFile(cast(IO[bytes], records or out), "w", compresslevel=6, allowZip64=True) as zf:
            fill(zf, records)
        return records.keys if records is not None else {}
    out = Path(out)
    if out.parent.exists() and not out.parent.is_dir():  # mkdir would only say "File exists"
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(out.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            records = RecordHasher(f)
            with zipfile.ZipFile(cast(IO[bytes], records), "w", compresslevel=6, allowZip64=True) as zf:
                fill(zf, records)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return records.keys
