"""nbpack/bundle/records.py: a zip member's record key, computed while zipfile writes it, equals the key of the
record's bytes as they finally sit in the archive (header rewritten with CRC and sizes, data, no trailer)."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile

import pytest

from nbpack.bundle.records import RecordHasher, record_key

_LOCAL = struct.Struct("<4s5H3L2H")  # a zip local file header, before its name and extra field


def _records_in(archive: bytes) -> dict[str, tuple[bytes, bytes]]:
    """Each member's (local header, stored data) read back from the finished archive's bytes."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            at = info.header_offset
            fixed = _LOCAL.unpack_from(archive, at)
            end = at + _LOCAL.size + fixed[9] + fixed[10]
            out[info.filename] = (archive[at:end], archive[end : end + info.compress_size])
    return out


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_keys_made_while_writing_match_the_records_as_written(method: int) -> None:
    buf = io.BytesIO()
    hasher = RecordHasher(buf)
    members = {"a.txt": b"alpha" * 1000, "dir/é, b.bin": bytes(range(256)) * 7, "empty": b""}
    with zipfile.ZipFile(hasher, "w", compression=method) as zf:  # type: ignore[arg-type]
        for name, data in members.items():
            hasher.begin()
            zf.writestr(name, data)
            hasher.end(name)
    records = _records_in(buf.getvalue())
    assert set(hasher.keys) == set(members)
    for name, (header, data) in records.items():
        # The header zipfile wrote first had CRC 0; the key must be over the final one.
        assert struct.unpack_from("<L", header, 14)[0] == zipfile.crc32(members[name]) & 0xFFFFFFFF
        assert hasher.keys[name] == record_key(header, hashlib.sha256(data).digest())


def test_a_known_digest_is_used_instead_of_hashing() -> None:
    buf = io.BytesIO()
    hasher = RecordHasher(buf)
    claimed = hashlib.sha256(b"something else").hexdigest()
    with zipfile.ZipFile(hasher, "w") as zf:  # type: ignore[arg-type]
        hasher.begin(known=claimed)
        zf.writestr("x", b"payload")
        hasher.end("x")
    header, _ = _records_in(buf.getvalue())["x"]
    assert hasher.keys["x"] == record_key(header, bytes.fromhex(claimed))


def test_every_part_of_a_record_changes_its_key() -> None:
    base = record_key(b"PK\x03\x04head", b"\x01" * 32)
    assert record_key(b"PK\x03\x04heae", b"\x01" * 32) != base
    assert record_key(b"PK\x03\x04head", b"\x02" * 32) != base
    assert record_key(b"PK\x03\x04head", b"\x01" * 32, [b"PK\x07\x08"]) != base
    # The header's length is part of the key, so bytes cannot move between header and digest unnoticed.
    assert record_key(b"ab", b"c" + b"\x01" * 31) != record_key(b"abc", b"\x01" * 31)
    assert len(base) == 64 and int(base, 16) >= 0


def test_end_without_a_member_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        RecordHasher(io.BytesIO()).end("nothing")
