"""Zip limits that come before parsing: the end records' entry count and directory size, a lying count, the
whole-archive ratio; and the same refusals on a real gunicorn worker, its memory read from /proc."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from nbpack.bundle import archive
from nbpack.errors import UnsafeArchive
from tests.integration.test_direct_upload import _setup, built  # noqa: F401 - fixture

MIB = 1 << 20


def _empty_entries(count: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(zipfile.ZipInfo(f"e{i}", (1980, 1, 1, 0, 0, 0)), b"")
    return buf.getvalue()


def _with_count(data: bytes, count: int) -> bytes:
    """The zip with its end record claiming ``count`` entries (the directory itself unchanged)."""
    at = data.rfind(b"PK\x05\x06")
    return data[: at + 8] + struct.pack("<2H", count, count) + data[at + 12 :]


def _zeros(members: int, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(members):
            zf.writestr(f"z{i}", bytes(size))
    return buf.getvalue()


def test_entry_count_refused_from_the_end_record(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _empty_entries(50)
    parsed: list[object] = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: parsed.append(self))
    with pytest.raises(UnsafeArchive, match="50 entries; the limit is 10"):
        archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=10))
    assert parsed == [], "zipfile never parsed the directory"


def test_lying_count_and_large_directory_refused(tmp_path: Path) -> None:
    data = _with_count(_empty_entries(50), 1)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert len(zf.infolist()) == 50  # zipfile itself ignores the count
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=10))
    path = tmp_path / "dir.zip"
    path.write_bytes(_empty_entries(50))
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
    data = _zeros(64, MIB)
    assert len(data) < 80 * 1024
    with pytest.raises(UnsafeArchive, match=r"archive expands \d+ times; the limit is 200"):
        archive.open_zip(io.BytesIO(data))
    with archive.open_zip(io.BytesIO(_zeros(2, 1000))) as zf:  # a small archive stays under the floor
        assert len(zf.infolist()) == 2


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _worker(master: int) -> int:
    workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(workers) == 1
    return int(workers[0])


def test_gunicorn_worker_refuses_bombs_without_the_memory(
    start_service,
    built: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    st = _setup(start_service, built, tmp_path, str(tmp_path / "store"), None)
    worker = _worker(st.svc.proc.pid)
    before = _peak_kib(worker)

    # 300,000 empty entries (~24 MiB): refused by the end record's count; the directory is never parsed.
    many = _empty_entries(300_000)
    assert 20 * MIB < len(many) < 30 * MIB
    status, answer = st.post(many)
    assert status == 400 and answer["error"] == "unsafe_archive" and "300000 entries" in answer["message"], answer
    # 20,000 entries under a count of 1: refused by walking the headers, still without ZipInfo objects.
    status, answer = st.post(_with_count(_empty_entries(20_000), 1))
    assert status == 400 and "more than 5000 entries" in answer["message"], answer
    # 64 members of 1 MiB of zeros each (~70 KiB sent): refused by the whole-archive ratio, nothing inflated.
    status, answer = st.post(_zeros(64, MIB))
    assert status == 400 and "expands" in answer["message"], answer

    grown = (_peak_kib(worker) - before) / 1024
    print(f"worker peak RSS grew {grown:.1f} MiB over three refused bombs")
    # Before the fix the first one alone took the worker +155 MiB.
    assert grown < 40, grown
    assert st.returns() == []
