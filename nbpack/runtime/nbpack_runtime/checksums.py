"""File checksums (sha256, md5, Rucio's adler32) and their checks."""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

from .base import CHUNK
from .errors import ChecksumMismatch


def _adler32_hex(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def checksums_of(path: Path, algs: list[str]) -> dict[str, str]:
    """Compute the named checksums of a file in one pass."""
    hashers = {a: hashlib.new(a) for a in algs if a in ("md5", "sha256")}
    adler = 1  # Rucio's adler32 starts from zlib's seed 1
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if "adler32" in algs:
                adler = zlib.adler32(chunk, adler)
    out = {a: h.hexdigest() for a, h in hashers.items()}
    if "adler32" in algs:
        out["adler32"] = _adler32_hex(adler)
    return out


def file_sha256(path: Path) -> str:
    return checksums_of(path, ["sha256"])["sha256"]


_HEX_LENGTH = {"sha256": 64, "md5": 32, "adler32": 8}
_HEX = re.compile(r"^[0-9a-f]+$")


def checked_checksums(name: str, checksums: dict[str, str]) -> dict[str, str]:
    """The known checksums lower-cased, each refused unless hex of its algorithm's length (they name cache paths)."""
    out = {}
    for alg, length in _HEX_LENGTH.items():
        value = checksums.get(alg)
        if value in (None, ""):
            continue
        value = str(value).lower()
        if len(value) != length or not _HEX.match(value):
            raise ChecksumMismatch(f"{name}: the manifest's {alg} is not {length} hex digits: {value[:80]!r}")
        out[alg] = value
    return out


def verify_part(part: Path, ref_name: str, expected: dict[str, str], size: int | None) -> None:
    """Raise ChecksumMismatch unless the file matches every given checksum and size."""
    if size is not None and part.stat().st_size != size:
        raise ChecksumMismatch(f"{ref_name}: size expected {size} bytes, got {part.stat().st_size}")
    expected = checked_checksums(ref_name, expected)
    algs = [a for a in ("adler32", "md5", "sha256") if expected.get(a)]
    got = checksums_of(part, algs)
    for alg in algs:
        if got[alg] != expected[alg]:
            raise ChecksumMismatch(f"{ref_name}: {alg} expected {expected[alg]}, got {got[alg]}")
