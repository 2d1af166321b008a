"""A small JSON document changed only by compare-and-swap, with this process's last copy kept to skip the read.

``update(storage, key, change)`` applies ``change`` to the document and writes the result with ``put_if_match``
against the tag of the copy it changed: the write lands only if nobody wrote in between, so every accepted change was
computed from the state it replaces, and the document's history is a serial one whatever the number of replicas and
threads (S3 conditional PUTs are atomic per key; the other backends compare under a lock). A lost race re-reads and
tries again.

Why a kept copy is safe: it only saves the GET before the conditional PUT. If another replica wrote since, the PUT
fails on the tag and the loop re-reads. An outcome that writes nothing (a refusal) is not backed by a write, so when
it came from the kept copy it is recomputed once from a fresh read before it is returned, unless the change settled
it on a fact it read from storage itself (``SETTLED``: "this return's manifest exists").

Threads of one process take a per-key lock around read-change-write, so they queue for microseconds instead of
losing conditional PUTs to each other (the 20 uploads of one handle on one worker would otherwise retry in turn).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from nbpack.errors import NotFound, StorageError
from nbpack.store.api import Storage

__all__ = ["SETTLED", "Change", "read", "update"]

T = TypeVar("T")
# change(doc) -> (result, write): ``doc`` is this call's own copy, changed in place; write=False writes nothing;
# SETTLED writes nothing either but stands on a fact the change read from storage itself (no fresh read needed).
SETTLED = "settled"
Change = Callable[[dict[str, Any]], tuple[T, bool | str]]

_KEPT = 4096  # documents kept per process (one per handle with recent returns; a few kB each)
_WAIT = 30.0  # a key contended this long by other replicas is a storage failure, not a quota answer

_kept: OrderedDict[tuple[int, str], tuple[str, str]] = OrderedDict()  # (storage, key) -> (tag, JSON text)
_kept_lock = threading.Lock()
_key_locks = [threading.Lock() for _ in range(64)]


def read(storage: Storage, key: str) -> tuple[dict[str, Any], str | None]:
    """The stored document and its tag; ``({}, None)`` when there is none yet."""
    try:
        data, tag = storage.read_tagged(key)
    except NotFound:
        return {}, None
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise StorageError(f"{key} is not a JSON object")
    _keep(storage, key, tag, data.decode())
    return doc, tag


def update(storage: Storage, key: str, change: Change[T]) -> T:
    """Apply ``change`` to the document at ``key`` atomically (see the module docstring); its result."""
    deadline = time.monotonic() + _WAIT
    with _key_locks[hash((id(storage), key)) % len(_key_locks)]:
        held = _kept_copy(storage, key)
        while True:
            if held is None:
                doc, tag = read(storage, key)
                fresh = True
            else:
                tag, doc, fresh = held[0], json.loads(held[1]), False
            result, write = change(doc)
            if write == SETTLED:
                return result
            if not write:
                if fresh:
                    return result
                held = None  # decided on the kept copy: decide again on the stored one
                continue
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            new_tag = storage.put_if_match(key, text.encode(), tag)
            if new_tag is not None:
                _keep(storage, key, new_tag, text)
                return result
            # Another replica wrote (or the kept copy was old): read again, after a short random pause when the
            # stored copy itself lost, so racing replicas spread out.
            if fresh:
                if time.monotonic() > deadline:
                    raise StorageError(f"{key} stayed contended for {_WAIT:.0f}s")
                time.sleep(secrets.randbelow(20) / 1000)
            held = None


def _kept_copy(storage: Storage, key: str) -> tuple[str, str] | None:
    with _kept_lock:
        return _kept.get((id(storage), key))


def _keep(storage: Storage, key: str, tag: str, text: str) -> None:
    with _kept_lock:
        _kept[(id(storage), key)] = (tag, text)
        _kept.move_to_end((id(storage), key))
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
