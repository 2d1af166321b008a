"""Members of a zip hashed as its bytes arrive, so checking a big upload needs no second pass over it.

``StreamDigests.feed`` follows the local file records in upload order, inflates each member's data in bounded steps
and keeps its sha256, CRC-32 and sizes by the record's offset. ``matching`` then hands back only digests of the very
bytes ``zipfile`` would read for a central-directory entry (same offset, name, sizes and CRC); anything else — a data
descriptor, encryption, another method, bytes before the first record, a member inflating past its declared size —
just stops the streaming pass, and those members are hashed from the file as before.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from nbpack.bundle.archive import Limits

__all__ = ["StreamDigests"]

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # signature .. extra length: 30 bytes
_LOCAL_SIG = b"PK\x03\x04"
_STEP = 1 << 20  # inflated bytes per step: a bomb never gets more memory than this


@dataclass(frozen=True)
class _Digest:
    name: str
    compress_size: int
    file_size: int
    crc: int
    sha256: str


class StreamDigests:
    """Feed it an upload's bytes in order (see module)."""

    def __init__(self, limits: Limits | None = None) -> None:
        # The archive's own limits bound this pass too, before any check of the whole file: it stops (and leaves
        # the members to the file check, which refuses them) past the entry count, at a member declared larger
        # than allowed, and once it has inflated more than the whole-archive ratio allows for what arrived — so a
        # bomb of many records or of a few highly compressed ones costs neither memory nor CPU here.
        self.limits = limits or Limits()
        self._inflated = 0
        self._head = bytearray()  # a local header being gathered
        self._pos = 0  # absolute offset of the next byte fed
        self._start = 0  # offset of the current record
        self._member: dict[str, Any] | None = None
        self._stopped = False
        self.found: dict[int, _Digest] = {}

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stopped:
            if self._member is None:
                view = self._header(view)
            else:
                view = self._data(view)

    def _header(self, view: memoryview) -> memoryview:
        if not self._head:
            self._start = self._pos
        need = _LOCAL.size
        if len(self._head) >= need:
            fields = _LOCAL.unpack_from(self._head)
            need += fields[9] + fields[10]
        take = min(len(view), need - len(self._head))
        self._head += view[:take]
        self._pos += take
        view = view[take:]
        if len(self._head) < _LOCAL.size:
            return view
        sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, elen = _LOCAL.unpack_from(self._head)
        if sig != _LOCAL_SIG or flags & 0x9 or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self._stopped = True  # the central directory (done), or a record this pass does not follow
            return view
        if len(self._head) < _LOCAL.size + nlen + elen:
            return view
        name_bytes = bytes(self._head[_LOCAL.size : _LOCAL.size + nlen])
        extra = bytes(self._head[_LOCAL.size + nlen : _LOCAL.size + nlen + elen])
        usize, csize = _zip64_sizes(extra, usize, csize)
        if usize > self.limits.max_member or len(self.found) >= self.limits.max_entries:
            self._stopped = True
            return view
        name = name_bytes.decode("utf-8" if flags & 0x800 else "cp437")
        self._head = bytearray()
        self._member = {
            "name": name,
            "left": csize,
            "csize": csize,
            "usize": usize,
            "crc_declared": crc,
            "inflate": zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None,
            "sha": hashlib.sha256(),
            "crc": 0,
            "size": 0,
        }
        if csize == 0:
            self._finish()
        return view

    def _data(self, view: memoryview) -> memoryview:
        m = self._member
        assert m is not None
        take = min(len(view), m["left"])
        piece, view = view[:take], view[take:]
        self._pos += take
        m["left"] -= take
        inflate = m["inflate"]
        if inflate is None:
            self._out(bytes(piece))
        else:
            out = inflate.decompress(piece, _STEP)
            self._out(out)
            while inflate.unconsumed_tail and not self._stopped:
                self._out(inflate.decompress(inflate.unconsumed_tail, _STEP))
        if m["left"] == 0 and not self._stopped:
            if inflate is not None:
                self._out(inflate.flush())
            self._finish()
        return view

    def _out(self, data: bytes) -> None:
        m = self._member
        assert m is not None
        m["size"] += len(data)
        self._inflated += len(data)
        if m["size"] > m["usize"]:
            self._stopped = True  # inflates past its declared size: the file check will refuse it
            return
        if self._inflated > max(self.limits.ratio_floor, self.limits.max_ratio * self._pos):
            self._stopped = True  # expands more than the archive may: the file check will refuse it
            return
        m["sha"].update(data)
        m["crc"] = zlib.crc32(data, m["crc"])

    def _finish(self) -> None:
        m = self._member
        assert m is not None
        self._member = None
        self.found[self._start] = _Digest(m["name"], m["csize"], m["size"], m["crc"], m["sha"].hexdigest())

    def matching(self, zf: zipfile.ZipFile) -> dict[str, str]:
        """Member name → sha256 for the central-directory entries whose exact bytes were hashed as they arrived."""
        out = {}
        for info in zf.infolist():
            d = self.found.get(info.header_offset)
            if (
                d is not None
                and d.name == info.filename
                and d.compress_size == info.compress_size
                and d.file_size == info.file_size
                and d.crc == info.CRC
                and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            ):
                out[info.filename] = d.sha256
        return out


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    """The sizes a zip64 extra field gives when the header's are 0xFFFFFFFF."""
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + size]
        if tag == 0x0001:
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(body):
                usize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(body):
                csize = struct.unpack_from("<Q", body, j)[0]
        i += 4 + size
    return usize, csize
