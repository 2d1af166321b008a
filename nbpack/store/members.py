"""One member of a stored bundle, read without the rest: where its bytes sit among the handle's parts.

A handle's zip exists only as parts (``content/<sha256>`` records and its own head/tail). zipfile reads the central
directory from the tail through a ranged reader; a member's data then sit at a known offset of one part, so a byte
range of a stored (uncompressed) member is one ranged read of one object, and a deflated member is one stream.
"""

from __future__ import annotations

import dataclasses
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from nbpack.errors import InvalidBundle, NotFound

__all__ = ["Member", "Directories", "directory", "find", "locate", "member_chunks"]

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's sizeFileHeader layout (30 bytes)
_LOCAL_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Member:
    """A member's name, uncompressed size, digest (from the manifest, when listed) and where its data sit."""

    name: str
    size: int
    stored: bool  # uncompressed: byte ranges are served straight from storage
    part: str  # storage key of the part holding it; its local header starts the part
    compress_size: int
    sha256: str | None = None
    data: int = -1  # offset of its data in the part, once read from the local header (see ``locate``)


def directory(
    zip_reader: BinaryIO, parts: list[tuple[str, int]], digests: dict[str, str] | None = None
) -> dict[str, Member]:
    """Every file member of the zip read through ``zip_reader`` (a seekable reader over ``parts``), by name."""
    starts: dict[int, str] = {}
    pos = 0
    for key, size in parts:
        starts.setdefault(pos, key)
        pos += size
    try:
        infos = zipfile.ZipFile(zip_reader).infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidBundle(f"stored bundle is not a readable zip: {exc}") from exc
    out: dict[str, Member] = {}
    for info in infos:
        if info.is_dir():
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.header_offset not in starts:
            raise InvalidBundle(f"stored bundle member {info.filename!r} is not one of its parts")
        out[info.filename] = Member(
            name=info.filename,
            size=info.file_size,
            stored=info.compress_type == zipfile.ZIP_STORED,
            part=starts[info.header_offset],
            compress_size=info.compress_size,
            sha256=(digests or {}).get(info.filename),
        )
    return out


def locate(member: Member, read_range: Callable[[str, int, int], Iterator[bytes]]) -> Member:
    """The member with ``data`` set: past its local header, whose name/extra lengths may differ from the directory's."""
    if member.data >= 0:
        return member
    head = b"".join(read_range(member.part, 0, _LOCAL_HEADER.size - 1))
    if len(head) != _LOCAL_HEADER.size or head[:4] != _LOCAL_MAGIC:
        raise InvalidBundle(f"stored bundle member {member.name!r} has no local header where its part starts")
    fields = _LOCAL_HEADER.unpack(head)
    name_len, extra_len = fields[-2], fields[-1]
    return dataclasses.replace(member, data=_LOCAL_HEADER.size + name_len + extra_len)


def member_chunks(
    member: Member,
    read_range: Callable[[str, int, int], Iterator[bytes]],
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of a stored member, or the whole content of a deflated one."""
    if member.size == 0:
        return
    base = locate(member, read_range).data
    if member.stored:
        end = member.size - 1 if end is None else min(end, member.size - 1)
        if start <= end:
            yield from read_range(member.part, base + start, base + end)
        return
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    for chunk in read_range(member.part, base, base + member.compress_size - 1):
        if out := inflate.decompress(chunk):
            yield out
    if tail := inflate.flush():
        yield tail


def find(members: dict[str, Member], path: str) -> Member:
    """The member at ``path``, or NotFound naming it."""
    member = members.get(path)
    if member is None:
        raise NotFound(f"this bundle has no file {path!r}")
    return member


class Directories:
    """The member directories of recently read handles, kept per worker (least recently used evicted first).

    A handle's parts never change while it lives, so an entry is never stale; a deleted handle is refused by its
    token check before its directory is asked for.
    """

    def __init__(self, read_range: Callable[[str, int, int], Iterator[bytes]], limit: int = 256) -> None:
        self._read_range = read_range
        self._limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, dict[str, Member]] = OrderedDict()

    def member(
        self,
        hid: str,
        parts: list[tuple[str, int]],
        open_zip: Callable[[], BinaryIO],
        digests: Callable[[], dict[str, str]],
        path: str,
    ) -> Member:
        """Member ``path`` of handle ``hid`` with its data located; on a miss the directory is read through
        ``open_zip()`` (a seekable reader over ``parts``) and the manifest's ``digests()``."""
        with self._lock:
            found = self._entries.get(hid)
            if found is not None:
                self._entries.move_to_end(hid)
        if found is None:
            with open_zip() as reader:
                found = directory(reader, parts, digests())
        member = locate(find(found, path), self._read_range)
        found[path] = member  # the located offset is kept too: later ranges cost one read
        with self._lock:
            self._entries[hid] = found
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)
        return member
