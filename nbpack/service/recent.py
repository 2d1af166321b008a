"""A worker's short memory of the handles its git capability has just checked: a lazy catalog read is tens of Range
requests on the files URL within a second, and each would otherwise read ``handle.json`` from storage first.

Revocation stays immediate where it can be: ``forget`` (called by the delete) drops the entry in this worker and
leaves a marker in the replica's cache folder that every worker of the replica checks (a local ``stat``, no storage
read) before trusting what it holds. Another replica, which never saw the delete, trusts its copy at most ``TTL``
seconds (1 s): the price of not asking storage on every Range request. An entry is also never trusted past the
handle's own expiry.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nbpack.clock import timestamp
from nbpack.service.handle import Handle

__all__ = ["RecentHandles", "TTL"]

TTL = 1.0  # seconds another replica may keep answering for a handle deleted elsewhere
_MAX = 4096  # entries per worker (a few hundred bytes each)


class RecentHandles:
    """Handles loaded within the last ``TTL`` seconds, for the git scope (files URL, git, lone notebook)."""

    def __init__(self, cache_dir: Path, ttl: float = TTL) -> None:
        self.ttl = ttl
        self.revoked = cache_dir / "revoked"
        self._held: dict[str, tuple[float, Handle]] = {}
        self._lock = threading.Lock()

    def get(self, bid: str, load: Callable[[], Handle]) -> Handle:
        """The handle ``bid``, from memory when read less than ``ttl`` ago and not forgotten, else ``load()``."""
        t = timestamp()
        with self._lock:
            held = self._held.get(bid)
        if held is not None and t - held[0] < self.ttl and not held[1].expired() and not self._marked(bid):
            return held[1]
        handle = load()  # NotFound (missing, expired) propagates: nothing is remembered
        with self._lock:
            if len(self._held) >= _MAX:
                self._held = {k: v for k, v in self._held.items() if t - v[0] < self.ttl}
                if len(self._held) >= _MAX:
                    self._held.pop(next(iter(self._held)))
            self._held[bid] = (t, handle)
        return handle

    def forget(self, bid: str) -> None:
        """The handle is being deleted: no worker of this replica answers from memory for it again."""
        with self._lock:
            self._held.pop(bid, None)
        self.revoked.mkdir(parents=True, exist_ok=True)
        (self.revoked / bid).touch()
        self._sweep()

    def _marked(self, bid: str) -> bool:
        return (self.revoked / bid).exists()

    def _sweep(self) -> None:
        # A marker matters for TTL seconds (what a worker holds is older after that); ids are never reused. File
        # times are the real clock's, never an injected one.
        cutoff = time.time() - max(60.0, 10 * self.ttl)
        try:
            entries = list(os.scandir(self.revoked))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass
