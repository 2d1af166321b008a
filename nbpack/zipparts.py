"""A stored zip as an ordered list of parts: split a zip file at its member records, stream parts back as one zip.

A zip member's local record (header + data) holds no offsets, so the same member written by the same writer is the
same bytes in every zip that holds it: such records can be stored once, content-addressed, and a zip is rebuilt by
concatenating records and its own central directory. Nothing here holds more than one chunk in memory.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["Segment", "split_zip", "segment_sha256", "open_segment", "iter_parts", "PartsReader"]

CHUNK = 1 << 20


@dataclass(frozen=True)
class Segment:
    """A byte range of a zip file: one member's local record (``name``) or the central directory (``name=None``)."""

    name: str | None
    offset: int
    size: int


def split_zip(path: Path) -> list[Segment]:
    """The zip's byte ranges in file order: each member record, then the central directory and end records."""
    size = Path(path).stat().st_size
    with zipfile.ZipFile(path) as zf:
        infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
        start_dir = zf.start_dir
    out: list[Segment] = []
    pos = 0
    for i, info in enumerate(infos):
        if info.header_offset != pos:
            raise ValueError(f"zip has {info.header_offset - pos} unowned bytes before {info.filename!r}")
        end = infos[i + 1].header_offset if i + 1 < len(infos) else start_dir
        out.append(Segment(info.filename, pos, end - pos))
        pos = end
    if pos != start_dir:
        raise ValueError("zip central directory does not follow the last member")
    out.append(Segment(None, start_dir, size - start_dir))
    return out


def segment_sha256(path: Path, seg: Segment) -> str:
    """sha256 of one segment's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(seg.offset)
        left = seg.size
        while left:
            data = f.read(min(CHUNK, left))
            if not data:
                raise ValueError("zip file shorter than its segments")
            h.update(data)
            left -= len(data)
    return h.hexdigest()


class _SliceReader(io.RawIOBase):
    """``size`` bytes of an open file from its current position, then EOF."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f, self._left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._f.read(min(len(buf), self._left))
        buf[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def open_segment(path: Path, seg: Segment) -> BinaryIO:
    """A reader of exactly one segment's bytes of the zip at ``path``."""
    f = open(path, "rb")  # noqa: SIM115 - closed with the reader
    f.seek(seg.offset)
    return io.BufferedReader(_SliceReader(f, seg.size), CHUNK)


def iter_parts(
    parts: list[tuple[str, int]],
    chunks: Callable[[str, int, int], Iterator[bytes]],
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of the concatenation of ``parts`` ([key, size]); ``chunks(key, s, e)``."""
    total = sum(size for _, size in parts)
    end = total - 1 if end is None else min(end, total - 1)
    pos = 0
    for key, size in parts:
        lo, hi = pos, pos + size - 1
        pos += size
        if size == 0 or hi < start or lo > end:
            continue
        yield from chunks(key, max(start, lo) - lo, min(end, hi) - lo)


class PartsReader(io.RawIOBase):
    """A file-like reader over the concatenation of ``parts``, opening one part at a time."""

    def __init__(self, parts: list[tuple[str, int]], open_part: Callable[[str], BinaryIO]) -> None:
        self._parts = list(parts)
        self._open = open_part
        self._current: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while True:
            if self._current is None:
                if not self._parts:
                    return 0
                self._current = self._open(self._parts.pop(0)[0])
            data = self._current.read(len(buf))
            if data:
                buf[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()
