"""The id vocabulary, defined once: handle ids, content (bundle) ids and return ids.

``h-`` + 24 hex: a handle, random per create. ``b-`` + 24 hex: a bundle's content id, derived from what it carries
(never from its ``returns`` section). ``r-`` + 24 hex: a return, derived from everything the return carries by the
runtime's rule (``nbpack_runtime.vocab.return_id``, which bundles run and the service checks with).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from nbpack.errors import NotFound

__all__ = ["HANDLE", "CONTENT", "RETURN", "pattern", "is_id", "check_id", "make_id", "new_handle_id"]

HANDLE = "h"
CONTENT = "b"
RETURN = "r"
_HEX_CHARS = 24


def pattern(kinds: str) -> str:
    """An unanchored regex source for an id of any of ``kinds`` (e.g. ``"h"``, ``"bh"``), for routes and keys."""
    return f"[{kinds}]-[0-9a-f]{{{_HEX_CHARS}}}"


_COMPILED: dict[str, re.Pattern[str]] = {}


def is_id(value: Any, kinds: str) -> bool:
    """True when ``value`` is exactly an id of one of ``kinds`` (no surrounding text, no trailing newline)."""
    if kinds not in _COMPILED:
        _COMPILED[kinds] = re.compile(pattern(kinds))
    return isinstance(value, str) and _COMPILED[kinds].fullmatch(value) is not None


def check_id(value: Any, kinds: str) -> None:
    """404 unless ``value`` is an id of one of ``kinds``: a malformed id names nothing that exists."""
    if not is_id(value, kinds):
        what = "return" if kinds == RETURN else "bundle"
        raise NotFound(f"no such {what} {str(value)[:40]!r}")


def make_id(kind: str, hexdigest: str) -> str:
    """The id of kind ``kind`` derived from a content digest (its first 24 hex digits)."""
    return f"{kind}-{hexdigest[:_HEX_CHARS]}"


def new_handle_id() -> str:
    """A fresh random handle id: never derived from content, so no two creates share one."""
    return make_id(HANDLE, secrets.token_hex(_HEX_CHARS // 2))
