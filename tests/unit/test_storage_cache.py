"""The worker's cache of immutable objects (nbpack/store/cache.py) over a real local folder: what it keeps, what it
never keeps, and that it stays within its bound."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nbpack.errors import InvalidInput, NotFound
from nbpack.store.backends import LocalStorage
from nbpack.store.cache import CachedStorage
from nbpack.store.keys import immutable

HID = "h-" + "a" * 24
SHA = "b" * 64


class Counting(LocalStorage):
    """A local folder that counts the reads reaching it."""

    reads = 0

    def iter_chunks(self, key, chunk_size=1 << 20, start=0, end=None):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().iter_chunks(key, chunk_size, start, end)

    def read_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().read_bytes(key)


@pytest.fixture
def backend(tmp_path: Path) -> Counting:
    return Counting(tmp_path / "store")


def test_immutable_keys() -> None:
    assert immutable(f"content/{SHA}")
    for name in ("manifest.json", "notebook.ipynb", "head.bin", "tail.bin"):
        assert immutable(f"handles/{HID}/{name}")
    # handle.json is rewritten by extend and deleted to revoke; returns and blobs are not written once.
    for key in (f"handles/{HID}/handle.json", f"returns/{HID}/r-1/manifest.json", f"blobs/{HID}/{SHA}", "content"):
        assert not immutable(key)


def test_handle_state_is_always_read_from_storage(backend: Counting) -> None:
    cached = CachedStorage(backend, immutable)
    key = f"handles/{HID}/handle.json"
    cached.put_bytes(key, b'{"v": 1}')
    assert cached.read_bytes(key) == b'{"v": 1}'
    backend.put_bytes(key, b'{"v": 2}')  # another replica's extend
    assert cached.read_bytes(key) == b'{"v": 2}'
    backend.delete(key)  # another replica's delete
    with pytest.raises(NotFound):
        cached.read_bytes(key)
    assert cached.cached_bytes == 0


def test_whole_and_ranged_reads_of_a_cached_part(backend: Counting) -> None:
    cached = CachedStorage(backend, immutable)
    key, data = f"content/{SHA}", bytes(range(256)) * 40
    backend.put_bytes(key, data)
    assert b"".join(cached.iter_chunks(key, 1000)) == data  # fills the cache on the way
    reads = backend.reads
    assert b"".join(cached.iter_chunks(key, 1000, 0, len(data) - 1)) == data
    assert b"".join(cached.iter_chunks(key, 7, 100, 299)) == data[100:300]
    assert b"".join(cached.iter_chunks(key, 7, 10000)) == data[10000:]
    assert cached.read_bytes(key) == data and cached.open(key).read() == data
    assert backend.reads == reads  # none of these reached storage


def test_a_sized_read_from_the_start_is_one_request_and_fills(backend: Counting) -> None:
    cached = CachedStorage(backend, immutable, max_object=1000)
    small, big = f"handles/{HID}/tail.bin", f"content/{SHA}"
    backend.put_bytes(small, b"s" * 600)
    backend.put_bytes(big, b"b" * 5000)
    assert b"".join(cached.iter_chunks(small, 64, 0, 599)) == b"s" * 600
    assert b"".join(cached.iter_chunks(small, 64, 0, 99)) == b"s" * 100
    assert backend.reads == 1
    # The head of a big part: served from the one read, not kept; the next ranged reads ask for just their range.
    assert b"".join(cached.iter_chunks(big, 64, 0, 99)) == b"b" * 100
    asked: list[tuple[int, int | None]] = []
    real = backend.iter_chunks

    def spy(key, chunk_size=1 << 20, start=0, end=None):  # type: ignore[no-untyped-def]
        asked.append((start, end))
        return real(key, chunk_size, start, end)

    backend.iter_chunks = spy  # type: ignore[method-assign]
    assert b"".join(cached.iter_chunks(big, 64, 0, 99)) == b"b" * 100
    assert b"".join(cached.iter_chunks(big, 64, 0, 4999)) == b"b" * 5000
    assert asked == [(0, 99), (0, 4999)] and backend.reads == 4 and cached.cached_bytes == 600


def test_bounded_and_least_recently_used_goes_first(backend: Counting) -> None:
    cached = CachedStorage(backend, immutable, max_bytes=3000, max_object=1000)
    keys = [f"content/{i:064x}" for i in range(6)]
    for i, key in enumerate(keys):
        backend.put_bytes(key, bytes([i]) * 1000)
        assert cached.read_bytes(key) == bytes([i]) * 1000
        assert cached.cached_bytes <= 3000
    reads = backend.reads
    assert cached.read_bytes(keys[-1]) == bytes([5]) * 1000 and backend.reads == reads
    assert cached.read_bytes(keys[0]) == bytes([0]) * 1000 and backend.reads == reads + 1


def test_writes_and_deletes_drop_what_they_replace(backend: Counting) -> None:
    cached = CachedStorage(backend, immutable)
    key = f"handles/{HID}/manifest.json"
    cached.put_bytes(key, b"first")
    assert cached.read_bytes(key) == b"first" and backend.reads == 0  # kept as written
    cached.delete_prefix(f"handles/{HID}/")
    assert cached.cached_bytes == 0
    with pytest.raises(NotFound):
        cached.read_bytes(key)
    cached.put_stream(key, io.BytesIO(b"second"), 6)
    assert cached.read_bytes(key) == b"second" and backend.read_bytes(key) == b"second"
    with pytest.raises(InvalidInput):
        cached.put_stream(f"handles/{HID}/tail.bin", io.BytesIO(b"longer than said"), 4)
    with pytest.raises(InvalidInput):
        cached.put_stream(f"handles/{HID}/head.bin", io.BytesIO(b"ab"), 4)
    assert not backend.exists(f"handles/{HID}/tail.bin") and not backend.exists(f"handles/{HID}/head.bin")
