"""A short critical section behind a create-only lock object, so a quota checked by a listing holds under parallel
load (the tenant's bytes; a handle's returns use a compare-and-swap ledger instead, ``store/ledger.py``).

Any number of replicas and threads share one bucket: a quota check that lists and then writes lets every upload
that listed before the others wrote through. Here the check and the charge happen under a lock (an object created
only if absent, ``put_if_absent``: S3 ``If-None-Match: *``, a hard link on a folder), held for one listing and one
write. A lock left by a killed process goes stale.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator

from nbpack.errors import NotFound, StorageError
from nbpack.store.backends import Storage

__all__ = ["LOCK_STALE", "locked"]

# A holder keeps the lock for a listing and a write (well under a second); one this old died holding it.
LOCK_STALE = 30.0


@contextlib.contextmanager
def locked(storage: Storage, key: str, *, wait: float = 60.0) -> Iterator[None]:
    """Hold the create-only lock ``key`` for the block (waiting up to ``wait`` seconds, else StorageError)."""
    mine = json.dumps({"nonce": secrets.token_hex(8), "at": time.time()}).encode()
    deadline, pause = time.monotonic() + wait, 0.01
    while not storage.put_if_absent(key, mine):
        _break_if_stale(storage, key)
        if time.monotonic() > deadline:
            raise StorageError(f"the quota lock {key} stayed busy for {wait:.0f}s")
        time.sleep(pause + secrets.randbelow(20) / 1000)
        pause = min(pause * 2, 0.2)
    try:
        yield
    finally:
        # Ours to delete without reading it first: a lock is broken as stale only after LOCK_STALE, and the block is
        # a listing and a write or two.
        storage.delete(key)


def _break_if_stale(storage: Storage, key: str) -> None:
    """Remove a lock whose holder has held it past LOCK_STALE (it was killed): only the copy read as stale."""
    try:
        held = storage.read_bytes(key)
        at = float(json.loads(held).get("at", 0))
    except (NotFound, ValueError, AttributeError, TypeError):
        return
    if time.time() - at <= LOCK_STALE:
        return
    # Several waiters may find the same stale lock: another may have broken it (or its holder released it) since
    # the first read, and that is no error (it surfaced as a 404 on an upload in tests/integration/test_webhook_fault).
    with contextlib.suppress(NotFound):
        if storage.read_bytes(key) == held:
            storage.delete(key)
