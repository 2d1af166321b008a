"""A handle's zip kept as parts in storage: its own head (nbpack.json record) and tail (central directory) under
the handle, every other member record shared by content between handles (``content/<key>``, the key of the record's
bytes: ``records.record_key``)."""

from __future__ import annotations

from pathlib import Path

from nbpack.bundle.build import MANIFEST
from nbpack.errors import NotFound
from nbpack.store.backends import Storage
from nbpack.store.keys import content_key, handle_key
from nbpack.store.zipparts import Segment, open_segment, segment_key, split_zip

__all__ = ["ensure_content", "put_parts"]


def put_parts(storage: Storage, hid: str, path: Path, keys: dict[str, str] | None = None) -> list[tuple[str, Segment]]:
    """Store the zip at ``path`` as parts: its own nbpack.json record and central directory, shared records.

    ``keys``: the record keys the zip's writer computed as it wrote them, by member name (``build.write_zip``); a
    record without one is read and hashed here."""
    keys = keys or {}
    parts: list[tuple[str, Segment]] = []
    for seg in split_zip(path):
        if seg.name is None or seg.name == MANIFEST:
            key = handle_key(hid, "tail.bin" if seg.name is None else "head.bin")
            _put_segment(storage, key, path, seg)
        else:
            key = content_key(keys.get(seg.name) or segment_key(path, seg))
            ensure_content(storage, key, path, seg, recheck=False)
        parts.append((key, seg))
    return parts


def _put_segment(storage: Storage, key: str, path: Path, seg: Segment) -> None:
    with open_segment(path, seg) as f:
        storage.put_stream(key, f, seg.size)


def ensure_content(storage: Storage, key: str, path: Path, seg: Segment, recheck: bool) -> None:
    """Make sure the shared record ``key`` holds ``seg`` of ``path`` (``recheck``: stat only, no touch)."""
    try:
        # Touched, not just seen: gc removes only content nobody has used for its grace period.
        info = storage.stat(key) if recheck else storage.touch(key)
        if info.size == seg.size:
            return
    except NotFound:
        pass
    _put_segment(storage, key, path, seg)
