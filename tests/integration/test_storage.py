"""The S3 backend against a real SeaweedFS: the storage contract (tests/storage_contract.py) and what only S3 has
(presigned URLs, credentials, a server that stops). The same contract runs on a folder and on memory in
tests/unit/test_store_backends.py."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request

import pytest

from nbpack.errors import NotFound, StorageError
from nbpack.store.backends import S3Storage, Storage, open_storage
from tests.storage_contract import *  # noqa: F403 - the contract's tests run here on S3
from tests.storage_contract import BlockStream, MiB

pytestmark = pytest.mark.s3


@pytest.fixture
def store(s3_storage: S3Storage) -> Storage:
    """A fresh SeaweedFS bucket under prefix ``nbpack``."""
    return s3_storage


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


def test_presigned_put(s3_storage: S3Storage) -> None:
    url = s3_storage.presigned_put("returns/b-1/r-1/return.zip", 120)
    assert url
    req = urllib.request.Request(url, data=b"PK-return", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    assert s3_storage.read_bytes("returns/b-1/r-1/return.zip") == b"PK-return"


def test_s3_ping_missing_bucket_and_bad_credentials(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = open_storage("s3://no-such-bucket-here/p", endpoint_url=s3_env.endpoint)
    with pytest.raises(StorageError, match="does not exist"):
        missing.ping()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    bad = open_storage("s3://no-such-bucket-here/p", endpoint_url=s3_env.endpoint)
    with pytest.raises(StorageError) as err:
        bad.stat("k")
    assert "wrong-secret-value" not in str(err.value) and s3_env.access_key not in str(err.value)


def test_small_requests_by_obstore_fail_like_botocore(s3_env, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The small single requests go by obstore (store/s3_small.py; the contract above runs through it): a 404 is
    NotFound, bad credentials a StorageError naming no secret, as botocore's path says them."""
    good = open_storage(f"s3://{s3_bucket}/p", endpoint_url=s3_env.endpoint)
    assert isinstance(good, S3Storage) and good.small is not None
    with pytest.raises(NotFound, match="quota/none.json"):
        good.read_tagged("quota/none.json")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    bad = open_storage(f"s3://{s3_bucket}/p", endpoint_url=s3_env.endpoint)
    for call in (
        lambda: bad.put_bytes("k", b"x"),
        lambda: bad.put_if_match("k", b"x", "0"),
        lambda: bad.read_tagged("k"),
    ):
        with pytest.raises(StorageError) as err:
            call()
        assert "wrong-secret-value" not in str(err.value) and s3_env.access_key not in str(err.value)


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
