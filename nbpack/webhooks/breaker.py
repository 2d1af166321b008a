"""A circuit breaker per callback host: a host that keeps failing is left alone for a while, then probed once.

In memory, per replica: each replica learns on its own, and a restart forgets (the outbox in storage keeps what
matters). Only failures that say something about the host count: no answer, or a 5xx/429; a 4xx is the receiver's
answer, not a sick host.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Breakers"]


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class Breakers:
    """Consecutive failures per host; ``threshold`` of them open the host's circuit for ``cooldown`` seconds."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold, self.cooldown = max(1, threshold), cooldown
        self._hosts: dict[str, _State] = {}
        self._lock = threading.Lock()

    def allow(self, host: str, now: float) -> bool:
        """May an attempt to ``host`` start now? After the cooldown one probe goes; its outcome decides."""
        with self._lock:
            state = self._hosts.get(host)
            if state is None or state.failures < self.threshold:
                return True
            if now < state.open_until or state.probing:
                return False
            state.probing = True
            return True

    def cancel(self, host: str) -> None:
        """The probe ``allow`` granted did not start after all."""
        with self._lock:
            state = self._hosts.get(host)
            if state is not None:
                state.probing = False

    def record(self, host: str, ok: bool, now: float) -> None:
        """The outcome of an attempt to ``host`` (``ok``: the host answered in a way that is not its failure)."""
        with self._lock:
            if ok:
                self._hosts.pop(host, None)
                return
            state = self._hosts.setdefault(host, _State())
            state.failures += 1
            state.probing = False
            if state.failures >= self.threshold:
                state.open_until = now + self.cooldown

    def open_hosts(self, now: float) -> list[str]:
        """Hosts whose circuit is open now (for metrics and logs)."""
        with self._lock:
            return sorted(h for h, s in self._hosts.items() if s.failures >= self.threshold and now < s.open_until)
