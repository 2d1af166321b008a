"""A folder store's staged writes (``store.local``, ``store.staging``): written beside the final file, visible only
on commit, and a stage a killed worker left behind is removed by ``abort_stale`` (what ``nbpack gc`` calls)."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nbpack.store import staging
from nbpack.store.local import LocalStorage


def test_a_stage_is_invisible_until_committed_and_a_left_one_is_swept(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    key = "returns/h-1/r-1/return.zip"
    done = staging.begin(storage, key, tmp_path / "spool")
    staging.fill(done, io.BytesIO(b"x" * 1000), limit=10_000)
    done.commit(key)
    left = staging.begin(storage, "returns/h-1/r-2/return.zip", tmp_path / "spool")
    left.write(b"half a body")  # the worker dies here: no commit, no close
    assert [i.key for i in storage.list("returns/")] == [key]  # the stage is not an object
    assert storage.read_bytes(key) == b"x" * 1000

    stager = storage.stager
    now = datetime.now(UTC)
    assert stager.abort_stale("returns/", now - timedelta(hours=1)) == []  # maybe still arriving
    (staged,) = stager.abort_stale("returns/", now + timedelta(minutes=1), dry_run=True)
    assert staged.startswith("returns/h-1/r-2/.tmp-") and left.path.is_file()
    old = time.time() - 2 * 86400
    os.utime(left.path, (old, old))
    assert stager.abort_stale("returns/", now - timedelta(days=1)) == [staged]
    assert not left.path.exists() and storage.read_bytes(key) == b"x" * 1000
    assert stager.abort_stale("returns/", now + timedelta(minutes=1)) == []
