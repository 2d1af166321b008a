"""nbpack/store/parts.py: a handle's zip as parts in storage (its own head and tail, members shared by content),
on the in-memory backend with an injected clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.store.memory import MemoryStorage
from nbpack.store.parts import ensure_content, put_parts


def _bundle(tmp_path: Path, title: str) -> Path:
    table = pa.table({"id": pa.array([2**53 + 1, -1], pa.int64()), "name": ["Étoile, n°1", None]})
    path = tmp_path / f"{title}.zip"
    build_bundle(BuildSpec(title=title, catalogs=[CatalogInput("stars", table)]), path)
    return path


def test_parts_join_to_the_zip_and_members_are_shared_by_content(tmp_path: Path, clock) -> None:  # noqa: ANN001
    store = MemoryStorage(name="parts")
    first = _bundle(tmp_path, "same")
    parts = put_parts(store, "h-" + "1" * 24, first)
    assert b"".join(store.read_bytes(key) for key, _ in parts) == first.read_bytes()
    own = [key for key, seg in parts if seg.name is None or seg.name == "nbpack.json"]
    assert own == [f"handles/h-{'1' * 24}/head.bin", f"handles/h-{'1' * 24}/tail.bin"]
    shared = {key for key, _ in parts} - set(own)
    assert shared and all(key.startswith("content/") for key in shared)

    # A second handle of the same bytes stores only its own head and tail, and touches what it shares (gc's age).
    clock.advance(86400)
    objects = {i.key for i in store.list("")}
    again = put_parts(store, "h-" + "2" * 24, first)
    assert {i.key for i in store.list("")} - objects == {
        f"handles/h-{'2' * 24}/head.bin",
        f"handles/h-{'2' * 24}/tail.bin",
    }
    assert {key for key, _ in again} - {f"handles/h-{'2' * 24}/head.bin", f"handles/h-{'2' * 24}/tail.bin"} == shared
    stamps = {store.stat(key).modified for key in shared}
    assert len(stamps) == 1 and stamps.pop() - store.stat(own[0]).modified == timedelta(days=1)


def test_a_short_shared_record_is_written_again(tmp_path: Path) -> None:
    store = MemoryStorage()
    path = _bundle(tmp_path, "short")
    parts = put_parts(store, "h-" + "3" * 24, path)
    key, seg = next((k, s) for k, s in parts if k.startswith("content/") and s.size > 1)
    good = store.read_bytes(key)
    store.put_bytes(key, good[:-1])  # a torn or tampered record of the wrong size
    ensure_content(store, key, path, seg, recheck=True)
    assert store.read_bytes(key) == good
