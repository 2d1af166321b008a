"""Timestamps as the service stores them: UTC, whole seconds, ISO 8601 with ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso", "now", "parse_iso"]


def now() -> datetime:
    """The current UTC time to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(when: datetime) -> str:
    """``when`` as stored: ISO 8601 with ``Z``."""
    return when.isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A stored timestamp back as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
