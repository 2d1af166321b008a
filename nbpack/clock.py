"""Timestamps as the service stores them: UTC, whole seconds, ISO 8601 with ``Z``.

The clock is the runtime's (the lowest layer, so bundles and the service write times alike); this module names it
for nbpack.
"""

from __future__ import annotations

from nbpack.runtime.nbpack_runtime.base import iso, now, now_iso, parse_iso

__all__ = ["iso", "now", "now_iso", "parse_iso"]
