"""The storage contract every backend keeps (nbpack/store/api.py), as tests over a ``store`` fixture.

A test module imports these and defines ``store``: tests/unit/test_store_backends.py runs them on a local folder
and on memory, tests/integration/test_storage.py on a real SeaweedFS bucket. The same assertions on each backend
are what let the unit tier use memory without hiding an S3 difference.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from pathlib import Path

import pytest

from nbpack.errors import InvalidInput, NotFound
from nbpack.store.backends import LocalStorage, S3Storage, Storage

__all__ = [
    "MiB",
    "BlockStream",
    "block",
    "files_under",
    "test_put_get_stat_list_delete",
    "test_large_stream_unknown_size_and_range",
    "test_failed_stream_leaves_old_object",
    "test_bad_keys_refused",
    "test_not_found",
    "test_put_if_absent",
    "test_put_if_match",
    "test_compose_and_touch",
]

MiB = 1 << 20


def block(i: int) -> bytes:
    return random.Random(i).randbytes(MiB)


class BlockStream(io.RawIOBase):
    """A non-seekable stream of deterministic 1 MiB blocks that may fail after ``fail_after`` blocks."""

    def __init__(self, blocks: int, fail_after: int | None = None) -> None:
        self.blocks, self.fail_after, self.i, self.buf = blocks, fail_after, 0, b""
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buf) < n) and self.i < self.blocks:
            if self.fail_after is not None and self.i >= self.fail_after:
                raise OSError("source broke half way")
            data = block(self.i)
            self.sha.update(data)
            self.buf += data
            self.i += 1
        n = len(self.buf) if n < 0 else n
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readinto(self, b) -> int:  # noqa: ANN001
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_put_get_stat_list_delete(store: Storage, tmp_path: Path) -> None:
    info = store.put_bytes("bundles/b-1/manifest.json", b'{"a": 1}')
    assert info.key == "bundles/b-1/manifest.json" and info.size == 8
    store.put_stream("bundles/b-1/bundle.zip", io.BytesIO(b"zipzip"), size=6)
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    assert store.put_file("returns/b-1/r-1/return.zip", src).size == 1000
    for key in ["a-c", "a/b", "a/c/d", "ab"]:
        store.put_bytes(key, key.encode())

    assert store.read_bytes("bundles/b-1/manifest.json") == b'{"a": 1}'
    with store.open("bundles/b-1/bundle.zip") as f:
        assert f.read(3) == b"zip" and f.read() == b"zip"
    st = store.stat("returns/b-1/r-1/return.zip")
    assert st.size == 1000 and st.etag and st.modified is not None
    assert store.exists("a/b") and not store.exists("a/x")

    # string-prefix semantics and byte order, the same on both backends
    assert [i.key for i in store.list("a")] == ["a-c", "a/b", "a/c/d", "ab"]
    assert [i.key for i in store.list("a/")] == ["a/b", "a/c/d"]
    assert [i.key for i in store.list("bundles/b-1/")] == [
        "bundles/b-1/bundle.zip",
        "bundles/b-1/manifest.json",
    ]
    assert len(list(store.list(""))) == 7

    out = tmp_path / "out.bin"
    assert store.download_to("returns/b-1/r-1/return.zip", out).size == 1000
    assert out.read_bytes() == b"x" * 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]

    store.delete("a/b")
    store.delete("a/b")  # absent: no error
    assert not store.exists("a/b")
    assert store.delete_prefix("bundles/") == 2
    assert [i.key for i in store.list("")] == ["a-c", "a/c/d", "ab", "returns/b-1/r-1/return.zip"]


def test_large_stream_unknown_size_and_range(store: Storage) -> None:
    blocks = 40
    src = BlockStream(blocks)
    info = store.put_stream("big.bin", src)  # type: ignore[arg-type]
    assert info.size == blocks * MiB
    if isinstance(store, S3Storage):
        assert info.etag and "-" in info.etag  # a multipart ETag: it was uploaded in parts

    # a range across the 8 MiB part boundary; end is inclusive, as in an HTTP Range header
    start, end = 8 * MiB - 100, 9 * MiB + 50
    got = b"".join(store.iter_chunks("big.bin", chunk_size=256 * 1024, start=start, end=end))
    expected = (block(7) + block(8) + block(9))[start - 7 * MiB : end - 7 * MiB + 1]
    assert got == expected and len(got) == end - start + 1

    tail = b"".join(store.iter_chunks("big.bin", start=blocks * MiB - 10))
    assert tail == block(blocks - 1)[-10:]
    assert b"".join(store.iter_chunks("big.bin", start=5, end=5)) == block(0)[5:6]
    assert (
        b"".join(store.iter_chunks("big.bin", start=blocks * MiB - 2, end=blocks * MiB + 99))
        == (block(blocks - 1)[-2:])
    )  # an end past the object is clamped, as HTTP does
    assert b"".join(store.iter_chunks("big.bin", start=blocks * MiB + 5)) == b""
    with pytest.raises(InvalidInput):
        store.iter_chunks("big.bin", start=10, end=9)

    sha = hashlib.sha256()
    sizes = []
    for chunk in store.iter_chunks("big.bin", chunk_size=MiB):
        sizes.append(len(chunk))
        sha.update(chunk)
    assert sha.hexdigest() == src.sha.hexdigest()
    assert max(sizes) <= MiB


def test_failed_stream_leaves_old_object(store: Storage) -> None:
    store.put_bytes("obj", b"old")
    # 12 MiB in: on S3 the multipart upload has started when the source breaks
    with pytest.raises(OSError, match="half way"):
        store.put_stream("obj", BlockStream(20, fail_after=12))  # type: ignore[arg-type]
    with pytest.raises(OSError, match="half way"):
        store.put_stream("new", BlockStream(20, fail_after=12))  # type: ignore[arg-type]
    # a stream shorter than its declared size is refused too
    with pytest.raises(InvalidInput, match="declared"):
        store.put_stream("short", io.BytesIO(b"abc"), size=10)
    with pytest.raises(InvalidInput, match="declared"):
        store.put_stream("long", io.BytesIO(b"abcdef"), size=3)

    assert store.read_bytes("obj") == b"old"
    assert [i.key for i in store.list("")] == ["obj"]
    if isinstance(store, LocalStorage):
        assert files_under(store.root) == ["obj"]
    if isinstance(store, S3Storage):
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        assert uploads == []


BAD_KEYS = ["", "/etc/passwd", "a/../b", "..", "a\\b", "a\x00b", "a//b", "a/", "./a", "a/.tmp-x"]


def test_bad_keys_refused(store: Storage) -> None:
    for key in BAD_KEYS:
        for call in (
            lambda: store.put_bytes(key, b"x"),  # noqa: B023 - called right here, inside the loop
            lambda: store.put_if_absent(key, b"x"),  # noqa: B023
            lambda: store.stat(key),  # noqa: B023
            lambda: store.open(key),  # noqa: B023
            lambda: store.delete(key),  # noqa: B023
        ):
            with pytest.raises(InvalidInput):
                call()
    with pytest.raises(InvalidInput):
        list(store.list("../"))
    assert list(store.list("")) == []


def test_not_found(store: Storage, tmp_path: Path) -> None:
    for call in (
        lambda: store.stat("nope"),
        lambda: store.open("nope"),
        lambda: store.read_bytes("nope"),
        lambda: store.iter_chunks("nope"),
        lambda: store.iter_chunks("nope", start=3, end=3),
        lambda: store.download_to("nope", tmp_path / "d"),
    ):
        with pytest.raises(NotFound, match="nope"):
            call()
    assert not store.exists("nope")
    assert not (tmp_path / "d").exists()
    store.delete("nope")
    assert store.delete_prefix("nope/") == 0


def test_put_if_absent(store: Storage) -> None:
    assert store.put_if_absent("once", b"first") is True
    assert store.put_if_absent("once", b"second") is False
    assert store.read_bytes("once") == b"first"

    # racing writers: exactly one wins and its content is what stays
    results: dict[int, bool] = {}

    def write(i: int) -> None:
        results[i] = store.put_if_absent("race", f"writer-{i}".encode())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [i for i, won in results.items() if won]
    assert len(results) == 6 and len(winners) == 1
    assert store.read_bytes("race") == f"writer-{winners[0]}".encode()


def test_put_if_match(store: Storage) -> None:
    """Compare-and-swap: a write lands only on the tag it was computed from; 8 threads x 5 increments of one
    counter, each a read and a conditional write retried on a lost race, end at exactly 40."""
    first = store.put_if_match("cas", b"0", None)
    assert first is not None and store.put_if_match("cas", b"again", None) is None  # None: only if absent
    data, tag = store.read_tagged("cas")
    assert (data, tag) == (b"0", first)
    assert store.put_if_match("missing", b"x", tag) is None and not store.exists("missing")

    def bump() -> None:
        for _ in range(5):
            while True:
                data, tag = store.read_tagged("cas")
                if store.put_if_match("cas", str(int(data) + 1).encode(), tag) is not None:
                    break

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert store.read_bytes("cas") == b"40"
    assert store.put_if_match("cas", b"stale", first) is None and store.read_bytes("cas") == b"40"


def test_compose_and_touch(store: Storage) -> None:
    first = store.put_bytes("src/a", b"payload")
    copied = store.compose("dst/a", [("src/a", 7)])
    assert copied.key == "dst/a" and copied.size == 7 and store.read_bytes("dst/a") == b"payload"
    store.put_bytes("src/a", b"changed")  # the copy is its own object
    assert store.read_bytes("dst/a") == b"payload"
    touched = store.touch("dst/a")
    assert touched.size == 7 and touched.modified is not None and first.key == "src/a"
    assert store.read_bytes("dst/a") == b"payload"
    with pytest.raises(NotFound):
        store.touch("nope")
    with pytest.raises(NotFound):
        store.compose("dst/b", [("nope", 1)])
    assert not store.exists("dst/b")
    # Several sources, one after the other (an empty one adds nothing); one missing writes nothing.
    store.put_bytes("src/b", b"")
    store.put_bytes("src/c", b"-tail")
    whole = store.compose("dst/c", [("src/a", 7), ("src/b", 0), ("src/c", 5)])
    assert whole.size == 12 and store.read_bytes("dst/c") == b"changed-tail"
    with pytest.raises(NotFound):
        store.compose("dst/d", [("src/a", 7), ("nope", 1)])
    assert not store.exists("dst/d")
    store.ping()
