"""The quota lock (nbpack/store/reservations.py) when its holder died: waiters break it without an error."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nbpack.store.local import LocalStorage


def test_a_stale_quota_lock_broken_by_another_waiter_is_no_error(tmp_path: Path) -> None:
    # Found by the fault test: a replica killed holding a quota lock; two waiters break it, the second's re-read
    # found it gone and the upload was answered 404.
    from nbpack.store import reservations

    class OtherWaiterBreaksIt(LocalStorage):
        reads = 0

        def read_bytes(self, key: str) -> bytes:
            data = super().read_bytes(key)
            self.reads += 1
            if self.reads == 1:
                self.delete(key)  # another waiter breaks the stale lock between this waiter's two reads
            return data

    st = OtherWaiterBreaksIt(tmp_path)
    key = "quota/locks/handle/h-" + "a" * 24
    st.put_bytes(key, json.dumps({"nonce": "dead", "at": time.time() - 3600}).encode())
    with reservations.locked(st, key, wait=5):
        assert json.loads(st.read_bytes(key))["nonce"] != "dead"
    assert not st.exists(key)
