"""The one wall clock of nbpack, and timestamps as the service stores them: UTC, whole seconds, ISO 8601 with ``Z``.

Everything that asks "what time is it" for expiry, lifetimes or age (link tokens, handle lifetimes, gc, stored
times) asks here, so a test injects a clock (``use``) instead of sleeping until time has passed. Durations of
work in progress (retry deadlines, timeouts) use ``time.monotonic`` and stay real. The clock is the runtime's (the
lowest layer, so bundles and the service stamp times alike); this module names it for nbpack.
"""

from __future__ import annotations

from nbpack.runtime.nbpack_runtime.base import iso, now, now_iso, parse_iso, timestamp
from nbpack.runtime.nbpack_runtime.base import use_clock as use

__all__ = ["iso", "now", "now_iso", "parse_iso", "timestamp", "use"]
