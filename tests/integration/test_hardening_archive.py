"""Zip limits on a real gunicorn worker, its memory read from /proc (the limits themselves, in process, are in
tests/unit/test_zip_limits.py)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_direct_upload import _setup, built  # noqa: F401 - fixture
from tests.unit.test_zip_limits import MIB, empty_entries, with_count, zeros


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
    many = empty_entries(300_000)
    assert 20 * MIB < len(many) < 30 * MIB
    status, answer = st.post(many)
    assert status == 400 and answer["error"] == "unsafe_archive" and "300000 entries" in answer["message"], answer
    # 20,000 entries under a count of 1: refused by walking the headers, still without ZipInfo objects.
    status, answer = st.post(with_count(empty_entries(20_000), 1))
    assert status == 400 and "more than 5000 entries" in answer["message"], answer
    # 64 members of 1 MiB of zeros each (~70 KiB sent): refused by the whole-archive ratio, nothing inflated.
    status, answer = st.post(zeros(64, MIB))
    assert status == 400 and "expands" in answer["message"], answer

    grown = (_peak_kib(worker) - before) / 1024
    print(f"worker peak RSS grew {grown:.1f} MiB over three refused bombs")
    # Before the fix the first one alone took the worker +155 MiB.
    assert grown < 40, grown
    assert st.returns() == []
