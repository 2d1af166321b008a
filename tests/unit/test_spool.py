"""nbpack/store/spool.py: request bodies spooled to disk under a limit; sweeps remove only old leftovers."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from nbpack.errors import TooLarge
from nbpack.store import spool


def test_a_body_under_the_limit_is_spooled_whole(tmp_path: Path) -> None:
    body = os.urandom(3 << 20)
    path = spool.receive(io.BytesIO(body), len(body), tmp_path)
    assert path.parent == tmp_path and path.read_bytes() == body


def test_a_body_over_the_limit_keeps_nothing(tmp_path: Path) -> None:
    with pytest.raises(TooLarge, match="limit of 10 bytes"):
        spool.receive(io.BytesIO(b"x" * 11), 10, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_broken_stream_keeps_nothing(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buf: bytearray) -> int:
            raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        spool.receive(Broken(), 100, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_old_spools(tmp_path: Path) -> None:
    fresh = spool.receive(io.BytesIO(b"in flight"), 100, tmp_path)
    old_file = spool.receive(io.BytesIO(b"left by a killed worker"), 100, tmp_path)
    old_dir = tmp_path / "upload-dir"
    (old_dir / "sub").mkdir(parents=True)
    day_ago = time.time() - 2 * 86400
    for p in (old_file, old_dir):
        os.utime(p, (day_ago, day_ago))
    spool.sweep_old(tmp_path)
    assert sorted(tmp_path.iterdir()) == [fresh]
