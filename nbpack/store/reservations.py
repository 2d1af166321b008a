"""Reservations, so quotas hold under parallel load: a short critical section behind a create-only lock object,
and pending markers that reserve a return's count and bytes before any of it is written.

Any number of replicas and threads share one bucket: a quota check that lists and then writes lets every upload
that listed before the others wrote through. Here the check and the reservation happen under a lock (an object
created only if absent, ``put_if_absent``: S3 ``If-None-Match: *``, a hard link on a folder), held for one listing
and one write; the data itself is written after the lock is released, the reservation standing for it until the
upload's end removes it (or a failure releases it). A lock or marker left by a killed process goes stale.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nbpack.errors import NotFound, StorageError
from nbpack.store.backends import Storage
from nbpack.store.keys import reservation_key, reservation_prefix

__all__ = ["LOCK_STALE", "PENDING_STALE", "Pending", "locked", "pending", "reserve"]

# A holder keeps the lock for a listing and a write (well under a second); one this old died holding it.
LOCK_STALE = 30.0
# An upload reserves before it writes its zip (already spooled locally); one whose reservation is this old died.
PENDING_STALE = 6 * 3600.0


@dataclass(frozen=True)
class Pending:
    """A live reservation: the return it is for and the bytes it holds."""

    key: str
    rid: str
    size: int


def pending(storage: Storage, hid: str) -> list[Pending]:
    """The handle's live reservations (stale ones are removed as they are seen)."""
    out = []
    cutoff = datetime.now(UTC) - timedelta(seconds=PENDING_STALE)
    for info in storage.list(reservation_prefix(hid)):
        rid, _, rest = info.key.rsplit("/", 1)[-1].partition(".")
        size = rest.split(".", 1)[0]
        if not size.isdigit():
            continue
        if info.modified is not None and info.modified < cutoff:
            storage.delete(info.key)
            continue
        out.append(Pending(info.key, rid, int(size)))
    return out


def reserve(storage: Storage, hid: str, rid: str, size: int) -> str:
    """Write one upload's reservation (call under the handle's lock); its key, to delete when done or failed."""
    key = reservation_key(hid, rid, size, secrets.token_hex(6))
    storage.put_bytes(key, b"")
    return key


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
