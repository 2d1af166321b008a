"""Zip limits that come before parsing: the end records' entry count and directory size, a lying count, the
whole-archive ratio (in process; the same refusals on a real gunicorn worker are in
tests/integration/test_hardening_archive.py)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from nbpack.bundle import archive
from nbpack.errors import UnsafeArchive

MIB = 1 << 20


def empty_entries(count: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(zipfile.ZipInfo(f"e{i}", (1980, 1, 1, 0, 0, 0)), b"")
    return buf.getvalue()


def with_count(data: bytes, count: int) -> bytes:
    """The zip with its end record claiming ``count`` entries (the directory itself unchanged)."""
    at = data.rfind(b"PK\x05\x06")
    return data[: at + 8] + struct.pack("<2H", count, count) + data[at + 12 :]


def zeros(members: int, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(members):
            zf.writestr(f"z{i}", bytes(size))
    return buf.getvalue()


def test_entry_count_refused_from_the_end_record(monkeypatch: pytest.MonkeyPatch) -> None:
    data = empty_entries(50)
    parsed: list[object] = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: parsed.append(self))
    with pytest.raises(UnsafeArchive, match="50 entries; the limit is 10"):
        archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=10))
    assert parsed == [], "zipfile never parsed the directory"


def test_lying_count_and_large_directory_refused(tmp_path: Path) -> None:
    data = with_count(empty_entries(50), 1)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert len(zf.infolist()) == 50  # zipfile itself ignores the count
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=10))
    path = tmp_path / "dir.zip"
    path.write_bytes(empty_entries(50))
    with pytest.raises(UnsafeArchive, match="central directory is 2440 bytes; the limit is 1000"):
        archive.open_zip(path, archive.Limits(max_directory=1000))
    with archive.open_zip(path) as zf:
        assert len(zf.infolist()) == 50


def test_zip64_end_record_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            zf.writestr(f"f{i}", b"x")
    # Force zip64 end records the way writers do above 65535 entries: the classic fields say 0xFFFF.
    raw = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        cd_size = sum(46 + len(i.filename) for i in zf.infolist())
    at = raw.rfind(b"PK\x05\x06")
    cd_at = at - cd_size
    z64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 3, 3, cd_size, cd_at)
    loc = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    data = raw[:at] + z64 + loc + eocd
    with archive.open_zip(io.BytesIO(data)) as zf:
        assert [i.filename for i in zf.infolist()] == ["f0", "f1", "f2"]
    with pytest.raises(UnsafeArchive, match="3 entries; the limit is 2"):
        archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=2))


def test_small_members_together_obey_the_ratio() -> None:
    # Each member sits at the 1 MiB floor, so none is checked alone: 64 of them are ~64 KiB packed.
    data = zeros(64, MIB)
    assert len(data) < 80 * 1024
    with pytest.raises(UnsafeArchive, match=r"archive expands \d+ times; the limit is 200"):
        archive.open_zip(io.BytesIO(data))
    with archive.open_zip(io.BytesIO(zeros(2, 1000))) as zf:  # a small archive stays under the floor
        assert len(zf.infolist()) == 2
