"""Whole-zip composition in one worker (``service.wholezip``): at most MAX_COMPOSING at once, whatever the downloads."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import SimpleNamespace

from nbpack.service import wholezip
from nbpack.store.memory import MemoryStorage


class _SigningStore(MemoryStorage):
    """In-memory storage that signs (as S3 does) and whose compositions wait until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started: list[str] = []

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        return f"https://store.example/{key}"

    def compose(self, key: str, sources: Sequence[tuple[str, int]]):  # type: ignore[no-untyped-def]
        self.started.append(key)
        self.release.wait(10)
        return super().compose(key, sources)


def test_downloads_of_many_big_handles_start_at_most_max_composing() -> None:
    store = _SigningStore()
    ctx = SimpleNamespace(storage=store, config=SimpleNamespace(whole_zip_min_bytes=10))
    zips = wholezip.WholeZips(ctx)  # type: ignore[arg-type]
    handles = []
    for i in range(6):
        store.put_bytes(f"content/part-{i}", b"x" * 20)
        handles.append(SimpleNamespace(id=f"h-{i:024x}", size=20, parts=((f"content/part-{i}", 20),)))
    try:
        assert all(zips.url(h, "b.zip") is None for h in handles)  # none composed yet: all stream
        for _ in range(100):  # bounded: the threads reach compose() at once
            if len(store.started) >= wholezip.MAX_COMPOSING:
                break
            threading.Event().wait(0.01)
        assert len(store.started) == wholezip.MAX_COMPOSING
        assert len(zips._composing) == wholezip.MAX_COMPOSING
    finally:
        store.release.set()
