"""A stored zip as an ordered list of parts: split a zip file at its member records, stream parts back as one zip.

A zip member's local record (header + data) holds no offsets, so the same member written by the same writer is the
same bytes in every zip that holds it: such records can be stored once, content-addressed (``records.record_key``),
and a zip is rebuilt by concatenating records and its own central directory. Nothing here holds more than one chunk
in memory.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nbpack.bundle.records import record_key

__all__ = ["Segment", "split_zip", "segment_key", "open_segment", "iter_parts", "RangedParts"]

CHUNK = 1 << 20


@dataclass(frozen=True)
class Segment:
    """A byte range of a zip file: one member's local record (``name``) or the central directory (``name=None``)."""

    name: str | None
    offset: int
    size: int
    data_size: int = 0  # a member's compressed size (the central directory's): its data after the local header


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
        out.append(Segment(info.filename, pos, end - pos, info.compress_size))
        pos = end
    if pos != start_dir:
        raise ValueError("zip central directory does not follow the last member")
    out.append(Segment(None, start_dir, size - start_dir))
    return out


def segment_key(path: Path, seg: Segment) -> str:
    """The record key (``records.record_key``) of one member's segment, its data read and hashed once."""
    with open(path, "rb") as f:
        f.seek(seg.offset)
        fixed = f.read(30)
        if len(fixed) != 30 or fixed[:4] != b"PK\x03\x04":
            raise ValueError(f"zip member {seg.name!r} has no local header where its record starts")
        name_len, extra_len = struct.unpack("<HH", fixed[26:30])
        header = fixed + f.read(name_len + extra_len)
        if len(header) + seg.data_size > seg.size:
            raise ValueError(f"zip member {seg.name!r} is longer than its record")
        data = hashlib.sha256()
        for chunk in _read(f, seg.data_size):
            data.update(chunk)
        return record_key(header, data.digest(), _read(f, seg.size - len(header) - seg.data_size))


def _read(f: BinaryIO, size: int) -> Iterator[bytes]:
    left = size
    while left:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise ValueError("zip file shorter than its segments")
        left -= len(chunk)
        yield chunk


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


class RangedParts(io.RawIOBase):
    """A seekable reader over the concatenation of ``parts`` that reads only the byte ranges asked for.

    ``read_range(key, start, end)`` yields bytes ``start..end`` (inclusive) of one part. A read after a seek asks for
    a small window (a zip header does not open a GiB-long range); reads that go on sequentially ask for windows that
    double up to the part's end, so a member streamed whole costs a handful of requests, not one per chunk.
    zipfile.ZipFile opens this reading only the central directory.
    """

    FIRST_WINDOW = 1 << 16

    def __init__(self, parts: list[tuple[str, int]], read_range: Callable[[str, int, int], Iterator[bytes]]) -> None:
        self._parts = [(key, size) for key, size in parts]
        self._starts: list[int] = []
        total = 0
        for _, size in self._parts:
            self._starts.append(total)
            total += size
        self._size = total
        self._read_range = read_range
        self._pos = 0
        self._stream: Iterator[bytes] | None = None
        self._stream_pos = -1  # absolute offset of the next byte the open stream yields
        self._stream_end = -1  # absolute offset of the last byte it yields
        self._window = self.FIRST_WINDOW
        self._pending = memoryview(b"")  # sliced without copying: a 1 MiB chunk may be read 64 KiB at a time

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _drop(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()  # releases the storage body of an abandoned range
        self._stream, self._stream_pos, self._pending = None, -1, memoryview(b"")

    def readinto(self, buf: Any) -> int:
        if self._pos >= self._size or len(buf) == 0:
            return 0
        if self._stream is None or self._stream_pos != self._pos:
            sequential = self._stream_end >= 0 and self._pos == self._stream_end + 1
            self._drop()
            self._window = min(self._window * 2, 1 << 30) if sequential else max(len(buf), self.FIRST_WINDOW)
            i = bisect.bisect_right(self._starts, self._pos) - 1
            while self._parts[i][1] == 0:  # empty parts own no byte
                i += 1
            key, size = self._parts[i]
            start = self._pos - self._starts[i]
            end = min(size - 1, start + self._window - 1)
            self._stream = iter(self._read_range(key, start, end))
            self._stream_pos, self._stream_end = self._pos, self._starts[i] + end
        while not self._pending:
            chunk = next(self._stream, b"")
            if not chunk:
                if self._stream_pos <= self._stream_end:
                    raise OSError(f"stored part ended {self._stream_end + 1 - self._stream_pos} bytes early")
                self._stream = None  # the window is read: the next read opens the following one
                return self.readinto(buf)
            self._pending = memoryview(chunk)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        self._stream_pos += n
        return n

    def close(self) -> None:
        self._drop()
        super().close()
