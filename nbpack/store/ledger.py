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

Threads of one process never race each other: one writer per key at a time, and the changes that arrive while it
writes go together in the next write (``update``), so they neither lose conditional PUTs to each other nor queue for
one PUT each.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

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


class _Slot:
    """One caller's change waiting in its key's queue, and its outcome once a commit decided it."""

    def __init__(self, change: Change[Any]) -> None:
        self.change = change
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class _Queue:
    """The changes of one key waiting for the next write, and the lock its one writer at a time holds."""

    def __init__(self) -> None:
        self.writer = threading.Lock()
        self.waiting: list[_Slot] = []


_queues: dict[tuple[int, str], _Queue] = {}
_queues_lock = threading.Lock()


def update(storage: Storage, key: str, change: Change[T]) -> T:
    """Apply ``change`` to the document at ``key`` atomically (see the module docstring); its result.

    Changes of one key made by this process's threads while a write of it is in flight are committed together by
    the next writer, in one conditional PUT (group commit): 20 parallel uploads to one handle cost a few ledger
    writes, not 20 in a row. Each change still sees the document as the changes before it in the batch left it."""
    slot = _Slot(change)
    with _queues_lock:
        queue = _queues.setdefault((id(storage), key), _Queue())
        queue.waiting.append(slot)
    with queue.writer:
        if not slot.done:
            with _queues_lock:
                batch, queue.waiting = queue.waiting, []
            try:
                _commit(storage, key, batch)
            except BaseException as e:  # a storage failure fails every change of the batch
                for s in batch:
                    if not s.done:
                        s.done, s.error = True, e
            finally:
                with _queues_lock:  # an idle key's queue goes (a caller arriving later makes a new one)
                    if not queue.waiting and _queues.get((id(storage), key)) is queue:
                        del _queues[(id(storage), key)]
    if slot.error is not None:
        raise slot.error
    return cast(T, slot.result)


def _commit(storage: Storage, key: str, batch: list[_Slot]) -> None:
    """Decide every change of ``batch`` in order on one copy of the document and write it once (see ``update``)."""
    deadline = time.monotonic() + _WAIT
    held = _kept_copy(storage, key)
    while True:
        if held is None:
            doc, tag = read(storage, key)
            fresh = True
        else:
            tag, doc, fresh = held[0], json.loads(held[1]), False
        outcomes: list[tuple[Any, BaseException | None]] = []
        write = recheck = False
        for s in batch:
            before = json.dumps(doc)
            try:
                result, wrote = s.change(doc)
            except Exception as e:  # a refusal (quota) leaves the document as it was
                doc = json.loads(before)
                outcomes.append((None, e))
                recheck = recheck or not fresh
                continue
            outcomes.append((result, None))
            write = write or wrote is True
            recheck = recheck or (wrote is False and not fresh)
        if recheck:
            held = None  # decided on the kept copy without a write behind it: decide again on the stored one
            continue
        if write:
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            new_tag = storage.put_if_match(key, text.encode(), tag)
            if new_tag is None:
                # Another replica wrote (or the kept copy was old): read again, after a short random pause when the
                # stored copy itself lost, so racing replicas spread out.
                if fresh:
                    if time.monotonic() > deadline:
                        raise StorageError(f"{key} stayed contended for {_WAIT:.0f}s")
                    time.sleep(secrets.randbelow(20) / 1000)
                held = None
                continue
            _keep(storage, key, new_tag, text)
        for s, (result, error) in zip(batch, outcomes, strict=True):
            s.result, s.error, s.done = result, error, True
        return


def _kept_copy(storage: Storage, key: str) -> tuple[str, str] | None:
    with _kept_lock:
        return _kept.get((id(storage), key))


def _keep(storage: Storage, key: str, tag: str, text: str) -> None:
    with _kept_lock:
        _kept[(id(storage), key)] = (tag, text)
        _kept.move_to_end((id(storage), key))
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
