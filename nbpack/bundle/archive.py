"""Reading zips that came from elsewhere: every entry is checked before anything is written.

Refused: absolute, drive-letter, backslash and ``..`` paths; symlinks and other non-regular
entries; duplicate names; overlapping entries (the "overlapped" zip bomb); more entries, larger
members or a larger total than the limits; members that expand more than ``max_ratio`` times;
encrypted members. Sizes are enforced on the bytes actually read, not only the declared ones.

The central directory is sized and counted from the end-of-central-directory record (and its zip64 twin) before
``zipfile`` parses it: ``zipfile`` builds one ``ZipInfo`` per entry first (300,000 empty entries cost ~155 MiB).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nbpack.errors import UnsafeArchive
from nbpack.runtime.nbpack_runtime.vocab import path_problem

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "check_name",
    "open_zip",
    "safe_members",
    "open_member",
    "read_member",
    "member_sha256",
    "extract",
]


@dataclass(frozen=True)
class Limits:
    """How much a zip may hold; the service's ingest limits are configurable through these."""

    max_entries: int = 10_000
    max_member: int = 8 << 30
    max_total: int = 16 << 30
    max_ratio: float = 200.0
    # Small members compress absurdly well (a page of zeros); only police the ratio above this size.
    ratio_floor: int = 1 << 20
    # The central directory's bytes; a header is 46 bytes plus name, extra field and comment.
    max_directory: int = 8 << 20


DEFAULT_LIMITS = Limits()
_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# Errors the standard library raises for damaged archives or member data (never for our own bugs).
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    IndexError,
    OverflowError,
)


def check_name(name: str) -> str:
    """Return a zip entry name if it is a safe relative path, else raise ``UnsafeArchive``."""
    # The member-path rule (a folder entry ends in '/'); '..' is named apart: it is how a zip leaves its folder.
    problem = path_problem(name[:-1] if name.endswith("/") else name)
    if problem and ".." in name.split("/"):
        problem = "leaves its folder"
    if problem:
        raise UnsafeArchive(f"archive entry {name!r} {problem}")
    return name


_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")


def _directory(f: IO[bytes]) -> tuple[int, int, int]:
    """(entries, directory size, directory start) from the end records, read without ``zipfile``."""
    end = f.seek(0, os.SEEK_END)
    tail_at = max(0, end - _EOCD.size - 0xFFFF)
    f.seek(tail_at)
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise UnsafeArchive("not a readable zip archive (no end-of-central-directory record)")
    _, _, _, _, entries, size, offset, _ = _EOCD.unpack_from(tail, at)
    eocd_at = tail_at + at
    record_at = eocd_at
    if entries == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF:
        loc = eocd_at - _ZIP64_LOCATOR.size
        if loc < 0:
            raise UnsafeArchive("not a readable zip archive (zip64 locator missing)")
        f.seek(loc)
        sig, _, z64_at, _ = _ZIP64_LOCATOR.unpack(f.read(_ZIP64_LOCATOR.size))
        if sig != b"PK\x06\x07":
            raise UnsafeArchive("not a readable zip archive (zip64 locator missing)")
        # As zipfile does, trust the record's position relative to the end (data may be prepended).
        record_at = loc - _ZIP64_EOCD.size
        f.seek(record_at)
        raw = f.read(_ZIP64_EOCD.size)
        if record_at < 0 or len(raw) < _ZIP64_EOCD.size or raw[:4] != b"PK\x06\x06":
            raise UnsafeArchive(f"not a readable zip archive (zip64 end record missing at {z64_at})")
        _, _, _, _, _, _, _, entries, size, offset = _ZIP64_EOCD.unpack(raw)
    start = record_at - size
    if start < 0:
        raise UnsafeArchive("not a readable zip archive (central directory out of place)")
    return entries, size, start


def _precheck(f: IO[bytes], limits: Limits) -> None:
    """Refuse by the declared entry count and directory size, then by the headers the directory really holds."""
    entries, size, start = _directory(f)
    if entries > limits.max_entries:
        raise UnsafeArchive(f"archive has {entries} entries; the limit is {limits.max_entries}")
    if size > limits.max_directory:
        raise UnsafeArchive(f"archive's central directory is {size} bytes; the limit is {limits.max_directory}")
    # The count in the end record is only a claim: zipfile reads headers until the directory's bytes run out.
    f.seek(start)
    data = f.read(size)
    at, count = 0, 0
    while at + _CENTRAL.size <= len(data):
        fields = _CENTRAL.unpack_from(data, at)
        if fields[0] != b"PK\x01\x02":
            break
        count += 1
        if count > limits.max_entries:
            raise UnsafeArchive(f"archive has more than {limits.max_entries} entries")
        at += _CENTRAL.size + fields[12] + fields[13] + fields[14]


def open_zip(source: str | Path | IO[bytes], limits: Limits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """Open a zip and check every entry against ``limits``; raise ``UnsafeArchive`` on the first problem."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                _precheck(f, limits)
        else:
            here = source.tell()
            _precheck(source, limits)
            source.seek(here)
        zf = zipfile.ZipFile(source)
    except _CORRUPT as exc:
        raise UnsafeArchive(f"not a readable zip archive ({_short(exc)})") from None
    try:
        _check(zf, limits)
    except BaseException:
        zf.close()
        raise
    return zf


def _check(zf: zipfile.ZipFile, limits: Limits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchive(f"archive has {len(infos)} entries; the limit is {limits.max_entries}")
    seen: set[str] = set()
    total = packed = 0
    for info in infos:
        name = check_name(info.filename)
        key = name.rstrip("/")
        if key in seen:
            raise UnsafeArchive(f"archive entry {name!r} appears twice")
        seen.add(key)
        mode = info.external_attr >> 16
        # Many writers leave the file-type bits at zero; only an explicit link or device type is refused
        # (whatever system the entry claims: extractors that honour the bits do not all check it).
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"archive entry {name!r} is a link or special file")
        # Bit 0 is classic encryption, bit 6 strong encryption, bit 5 "patched data" nobody writes.
        if info.flag_bits & 0x41:
            raise UnsafeArchive(f"archive entry {name!r} is encrypted")
        if info.flag_bits & 0x20 or info.compress_type not in _METHODS:
            raise UnsafeArchive(f"archive entry {name!r} uses an unsupported compression method")
        if info.file_size > limits.max_member:
            raise UnsafeArchive(f"archive entry {name!r} is {info.file_size} bytes; the limit is {limits.max_member}")
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeArchive(
                f"archive entry {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                f" times; the limit is {limits.max_ratio:g}"
            )
        total += info.file_size
        packed += info.compress_size
        if total > limits.max_total:
            raise UnsafeArchive(f"archive expands to more than {limits.max_total} bytes")
    files = {i.filename for i in infos if not i.is_dir()}
    for name in sorted(seen):
        parts = name.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in files:
                raise UnsafeArchive(f"archive entry {name!r} sits under a file entry")
    # Entries whose data overlap let a tiny archive expand many times over: each must end before the next.
    spans = sorted((i.header_offset, i.compress_size, i.filename) for i in infos)
    for (off, size, name), (next_off, _, _) in zip(spans, spans[1:], strict=False):
        if off + 30 + len(name.encode()) + size > next_off:
            raise UnsafeArchive(f"archive entry {name!r} overlaps the next entry")
    # Members under the ratio floor escape the check one by one; together they must not.
    if total > limits.ratio_floor and total > limits.max_ratio * max(packed, 1):
        raise UnsafeArchive(f"archive expands {total // max(packed, 1)} times; the limit is {limits.max_ratio:g}")


def safe_members(zf: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    """The file entries of an already checked zip, in archive order (directories skipped)."""
    return (i for i in zf.infolist() if not i.is_dir())


class _Bounded:
    """Wraps a member stream so it cannot yield more than its declared size."""

    def __init__(self, raw: IO[bytes], info: zipfile.ZipInfo) -> None:
        self.raw, self.info, self.left = raw, info, info.file_size

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all when negative), never more than the declared size."""
        want = self.left + 1 if n < 0 else min(n, self.left + 1)
        try:
            data = self.raw.read(want)
        except _CORRUPT as exc:
            raise UnsafeArchive(f"archive entry {self.info.filename!r} is corrupt ({_short(exc)})") from None
        self.left -= len(data)
        if self.left < 0:
            raise UnsafeArchive(f"archive entry {self.info.filename!r} holds more than it declares")
        # ZipExtFile.read(k) returns fewer than k bytes only at the end of the member's data.
        if self.left > 0 and len(data) < want:
            raise UnsafeArchive(f"archive entry {self.info.filename!r} holds less than it declares")
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _Bounded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Bounded:
    """A stream over one member that raises ``UnsafeArchive`` for corrupt data or more bytes than declared."""
    try:
        return _Bounded(zf.open(info), info)
    except _CORRUPT as exc:
        raise UnsafeArchive(f"archive entry {info.filename!r} is corrupt ({_short(exc)})") from None


def read_member(zf: zipfile.ZipFile, name: str, max_bytes: int = 64 << 20) -> bytes:
    """Read one (small) member fully, refusing it when larger than ``max_bytes``."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise UnsafeArchive(f"archive has no {name!r}") from None
    if info.file_size > max_bytes:
        raise UnsafeArchive(f"archive entry {name!r} is larger than {max_bytes} bytes")
    with open_member(zf, info) as f:
        return f.read()


def member_sha256(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """sha256 of one member's data, read in chunks; corrupt data raises ``UnsafeArchive``."""
    h = hashlib.sha256()
    with open_member(zf, info) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract(zf: zipfile.ZipFile, dest: Path) -> list[Path]:
    """Extract a checked zip into ``dest``; on any failure nothing from the archive is left in ``dest``.

    Members go to a staging folder beside ``dest`` first (so every byte is read and verified),
    then move into place; names already present in ``dest`` are refused before anything moves.
    """
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extract", dir=dest.parent))
    try:
        rels = _extract_to(zf, stage)
        tops = sorted({rel.split("/", 1)[0] for rel in rels})
        if not dest.exists():
            os.rename(stage, dest)
        else:
            clash = [t for t in tops if os.path.lexists(dest / t)]
            if clash:
                raise UnsafeArchive(f"archive entry {clash[0]!r} already exists in {dest}")
            for top in tops:
                os.rename(stage / top, dest / top)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [dest / rel for rel in rels]


def _extract_to(zf: zipfile.ZipFile, root: Path) -> list[str]:
    root = root.resolve()
    written = []
    for info in safe_members(zf):
        name = check_name(info.filename)
        target = (root / name).resolve()
        if root not in target.parents:
            raise UnsafeArchive(f"archive entry {name!r} leaves the target folder")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_member(zf, info) as src, open(target, "xb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            raise UnsafeArchive(f"archive entry {name!r} clashes with another entry") from None
        os.chmod(target, 0o644)
        written.append(target.relative_to(root).as_posix())
    return written


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
