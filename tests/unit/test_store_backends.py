"""The storage contract (tests/storage_contract.py) on a local folder and on memory, and what only each of those has.

S3 runs the same contract against SeaweedFS in tests/integration/test_storage.py.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nbpack.errors import Conflict, InvalidInput
from nbpack.store.backends import LocalStorage, MemoryStorage, S3Storage, Storage, open_storage
from tests.storage_contract import *  # noqa: F403 - the contract's tests run here on local and memory
from tests.storage_contract import files_under


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each contract test runs once on a fresh folder and once on a fresh in-memory store."""
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    return open_storage(f"memory://test-{uuid.uuid4().hex}")


def test_local_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalStorage(tmp_path / "root")
    os.symlink(outside, store.root / "link")
    with pytest.raises(InvalidInput, match="outside"):
        store.put_bytes("link/x", b"x")
    assert list(outside.iterdir()) == []


def test_local_key_under_object_is_conflict(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put_bytes("a/b", b"x")
    with pytest.raises(Conflict, match="under an existing object"):
        store.put_bytes("a/b/c", b"y")
    with pytest.raises(Conflict, match="prefix of other objects"):
        store.put_bytes("a", b"y")
    assert files_under(tmp_path) == ["a/b"]


def test_memory_key_may_prefix_other_keys_as_on_s3() -> None:
    store = MemoryStorage()
    store.put_bytes("a/b", b"x")
    store.put_bytes("a/b/c", b"y")
    store.put_bytes("a", b"z")
    assert [i.key for i in store.list("a")] == ["a", "a/b", "a/b/c"]
    assert store.delete_prefix("a/") == 2 and [i.key for i in store.list("")] == ["a"]


def test_local_and_memory_have_no_presigned_urls(tmp_path: Path) -> None:
    for store in (LocalStorage(tmp_path), MemoryStorage()):
        store.put_bytes("k", b"v")
        assert store.presigned_get("k", 60) is None and store.presigned_put("k", 60) is None
        assert store.supports_presigned_put is False


def test_open_storage_urls(tmp_path: Path) -> None:
    a = open_storage((tmp_path / "x").as_uri())
    assert isinstance(a, LocalStorage) and a.root == (tmp_path / "x").resolve() and a.root.is_dir()
    assert a.url == (tmp_path / "x").resolve().as_uri()
    a.ping()
    b = open_storage(str(tmp_path / "y"))
    assert isinstance(b, LocalStorage) and b.url.startswith("file:///")
    with pytest.raises(InvalidInput, match="unsupported"):
        open_storage("gs://bucket/x")
    with pytest.raises(InvalidInput, match="remote host"):
        open_storage("file://elsewhere/x")
    with pytest.raises(InvalidInput):
        open_storage("s3://user:pw@bucket/x")
    s = open_storage("s3://bkt/some/prefix/", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s, S3Storage) and s.url == "s3://bkt/some/prefix" and s.prefix == "some/prefix"


def test_memory_urls_name_one_store_per_process() -> None:
    name = f"shared-{uuid.uuid4().hex}"
    first, again = open_storage(f"memory://{name}"), open_storage(f"memory://{name}")
    other = open_storage(f"memory://{name}-other")
    assert isinstance(first, MemoryStorage) and first.url == f"memory://{name}"
    first.put_bytes("k", b"v")
    assert again.read_bytes("k") == b"v"  # the same URL is the same store, as one folder or bucket would be
    assert not other.exists("k")
    for bad in ("memory://", "memory://a/b", "memory://x?y=1", "memory://u@x", "memory://" + "n" * 101):
        with pytest.raises(InvalidInput, match="memory://NAME"):
            open_storage(bad)


def test_memory_times_come_from_the_injected_clock() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store = MemoryStorage(now=lambda: when)
    assert store.put_bytes("k", b"v").modified == when
    when += timedelta(days=3)
    assert store.stat("k").modified == when - timedelta(days=3)  # reading does not change it
    assert store.touch("k").modified == when and [i.modified for i in store.list("")] == [when]


def test_memory_reader_keeps_what_it_opened() -> None:
    store = MemoryStorage()
    store.put_bytes("k", b"old bytes")
    reader = store.open("k")
    chunks = store.iter_chunks("k", chunk_size=4, start=1, end=5)
    store.put_bytes("k", b"NEW")
    assert reader.read() == b"old bytes" and list(chunks) == [b"ld b", b"y"]
    with pytest.raises(InvalidInput):
        store.iter_chunks("k", chunk_size=0)
