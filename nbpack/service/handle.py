"""A handle as the service holds it: the parsed ``handle.json``, read once per request and passed along.

``handle.json`` is written last at a create (its presence is what makes the handle exist), rewritten by extend and
deleted first by a delete; every other object of a handle never changes. A request reads it once, through
:func:`load`, and hands the :class:`Handle` to whatever else it asks of the service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from nbpack.clock import now, parse_iso
from nbpack.errors import NotFound
from nbpack.ids import HANDLE as HANDLE_ID
from nbpack.ids import check_id
from nbpack.store.backends import Storage
from nbpack.store.keys import HANDLE, handle_key

__all__ = ["Handle", "load", "save"]


@dataclass(frozen=True)
class Handle:
    """One stored bundle's state: who holds it, its capability nonce, its lifetime and the zip's parts."""

    id: str
    tenant: str
    owner: str | None
    content_id: str  # the bundle's own id (its manifest's), shared by every handle of the same content
    title: str
    nonce: str  # in every token of the handle: a new handle (or none) revokes them all
    created: str
    created_ms: int  # orders the tenant's listing (see keys.index_keys)
    expires: str
    callback_url: str | None
    bytes: int  # the zip's size
    parts: tuple[tuple[str, int], ...]  # (storage key, size) in zip order
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys a newer writer added: kept as read

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Handle:
        """The handle a ``handle.json`` document describes."""
        names = {f.name for f in fields(cls)} - {"extra", "parts"}
        known: dict[str, Any] = {k: doc.get(k) for k in names}
        extra = {k: v for k, v in doc.items() if k not in names and k != "parts"}
        return cls(**known, parts=tuple((str(k), int(n)) for k, n in doc["parts"]), extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The ``handle.json`` document (the same keys it was read with)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "parts")}
        return {**self.extra, **out, "parts": [[k, n] for k, n in self.parts]}

    def summary(self) -> dict[str, Any]:
        """The API's view of the handle (listing, describe, extend)."""
        return {
            "id": self.id,
            "content_id": self.content_id,
            "title": self.title,
            "owner": self.owner,
            "created": self.created,
            "expires": self.expires,
            "bytes": self.bytes,
        }

    @property
    def size(self) -> int:
        """The zip's size in bytes, as its parts add up (Content-Length and ranges)."""
        return sum(n for _, n in self.parts)

    def expired(self, at: datetime | None = None) -> bool:
        """True once the handle's expiry has passed."""
        return parse_iso(self.expires) <= (at or now())


def load(storage: Storage, bid: str, tenant: str | None = None) -> Handle:
    """A live handle (one read of its ``handle.json``); NotFound when missing, expired, or (with ``tenant``)
    another tenant's."""
    check_id(bid, HANDLE_ID)
    try:
        handle = Handle.from_json(json.loads(storage.read_bytes(handle_key(bid, HANDLE))))
    except NotFound:
        raise NotFound(f"no such bundle {bid}") from None
    # Another tenant's handle answers exactly like a missing one.
    if (tenant is not None and handle.tenant != tenant) or handle.expired():
        raise NotFound(f"no such bundle {bid}")
    return handle


def save(storage: Storage, handle: Handle) -> None:
    """Write the handle's ``handle.json`` (at a create: last, since its presence makes the handle exist)."""
    storage.put_bytes(handle_key(handle.id, HANDLE), json.dumps(handle.to_json(), sort_keys=True).encode())
