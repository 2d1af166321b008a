"""Storage backends against real storage: a temp folder and a real SeaweedFS."""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nbpack.errors import Conflict, InvalidInput, NotFound, StorageError
from nbpack.store.backends import LocalStorage, S3Storage, Storage, open_storage

MiB = 1 << 20


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each test runs once on a local folder and once on a fresh SeaweedFS bucket."""
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    return request.getfixturevalue("s3_storage")


def _block(i: int) -> bytes:
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
            block = _block(self.i)
            self.sha.update(block)
            self.buf += block
            self.i += 1
        n = len(self.buf) if n < 0 else n
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readinto(self, b) -> int:  # noqa: ANN001
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _files_under(root: Path) -> list[str]:
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
    expected = (_block(7) + _block(8) + _block(9))[start - 7 * MiB : end - 7 * MiB + 1]
    assert got == expected and len(got) == end - start + 1

    tail = b"".join(store.iter_chunks("big.bin", start=blocks * MiB - 10))
    assert tail == _block(blocks - 1)[-10:]
    assert b"".join(store.iter_chunks("big.bin", start=5, end=5)) == _block(0)[5:6]
    assert (
        b"".join(store.iter_chunks("big.bin", start=blocks * MiB - 2, end=blocks * MiB + 99))
        == (_block(blocks - 1)[-2:])
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
        assert _files_under(store.root) == ["obj"]
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
    assert _files_under(tmp_path) == ["a/b"]


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


def test_presigned_local_is_none(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put_bytes("k", b"v")
    assert store.presigned_get("k", 60) is None and store.presigned_put("k", 60) is None


@pytest.mark.s3
def test_presigned_get_and_tamper(s3_storage: S3Storage) -> None:
    s3_storage.put_bytes("bundles/b-1/bundle.zip", b"PK-bundle")
    url = s3_storage.presigned_get("bundles/b-1/bundle.zip", 120, filename="my bundle.zip")
    assert url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"PK-bundle"
        assert 'filename="my bundle.zip"' in r.headers["Content-Disposition"]

    sig = url.split("X-Amz-Signature=")[1][:64]
    tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered, timeout=10)
    assert err.value.code == 403

    # A quote or non-ASCII name becomes an RFC 6266 header (ASCII fallback + filename*), never a broken one.
    url = s3_storage.presigned_get("bundles/b-1/bundle.zip", 60, filename='a"b é.zip')
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Disposition"] == (
            "attachment; filename=\"a_b e.zip\"; filename*=UTF-8''a%22b%20%C3%A9.zip"
        )


@pytest.mark.s3
def test_presigned_put(s3_storage: S3Storage) -> None:
    url = s3_storage.presigned_put("returns/b-1/r-1/return.zip", 120)
    assert url
    req = urllib.request.Request(url, data=b"PK-return", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    assert s3_storage.read_bytes("returns/b-1/r-1/return.zip") == b"PK-return"


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


@pytest.mark.s3
def test_s3_ping_missing_bucket_and_bad_credentials(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = open_storage("s3://no-such-bucket-here/p", endpoint_url=s3_env.endpoint)
    with pytest.raises(StorageError, match="does not exist"):
        missing.ping()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    bad = open_storage("s3://no-such-bucket-here/p", endpoint_url=s3_env.endpoint)
    with pytest.raises(StorageError) as err:
        bad.stat("k")
    assert "wrong-secret-value" not in str(err.value) and s3_env.access_key not in str(err.value)


@pytest.mark.s3
def test_stopped_seaweedfs_fails_fast_then_recovers(seaweedfs, s3_storage: S3Storage) -> None:
    s3_storage.put_bytes("kept", b"still here")
    big = BlockStream(16)
    s3_storage.put_stream("big", big)  # type: ignore[arg-type]
    reading = s3_storage.iter_chunks("big", chunk_size=MiB)
    first = next(reading)
    seaweedfs.stop()
    try:
        # a read cut by the stop must fail loudly, never end early with a truncated object
        sha = hashlib.sha256(first)
        try:
            for chunk in reading:
                sha.update(chunk)
        except StorageError:
            pass
        else:
            assert sha.hexdigest() == big.sha.hexdigest()

        for call in (
            lambda: s3_storage.stat("kept"),
            s3_storage.ping,
            lambda: s3_storage.put_bytes("k", b""),
            lambda: s3_storage.put_stream("new", BlockStream(12)),  # type: ignore[arg-type]
            lambda: list(s3_storage.list("")),
        ):
            t0 = time.monotonic()
            with pytest.raises(StorageError) as err:
                call()
            assert time.monotonic() - t0 < 10
            assert err.value.http_status == 503
            assert seaweedfs.secret_key not in str(err.value)
    finally:
        seaweedfs.restart()
    assert s3_storage.read_bytes("kept") == b"still here"
    assert [i.key for i in s3_storage.list("")] == ["big", "kept"]
