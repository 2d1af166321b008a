"""The one wall clock of nbpack, and timestamps as the service stores them: UTC, whole seconds, ISO 8601 with ``Z``.

Everything that asks "what time is it" for expiry, lifetimes or age (link tokens, handle lifetimes, gc, stored
times) asks here, so a test injects a clock (``use``) instead of sleeping until time has passed. Durations of
work in progress (retry deadlines, timeouts) use ``time.monotonic`` and stay real.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

__all__ = ["iso", "now", "parse_iso", "timestamp", "use"]

_source: Callable[[], float] = time.time


def timestamp() -> float:
    """Seconds since the epoch, from the clock in use."""
    return _source()


def now() -> datetime:
    """The current UTC time to the second."""
    return datetime.fromtimestamp(_source(), UTC).replace(microsecond=0)


@contextlib.contextmanager
def use(source: Callable[[], float]) -> Iterator[None]:
    """Within the block, the time is what ``source`` answers (seconds since the epoch): tests move time on."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


def iso(when: datetime) -> str:
    """``when`` as stored: ISO 8601 with ``Z``."""
    return when.isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A stored timestamp back as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
