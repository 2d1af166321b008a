"""A big return stored as it arrives: teed to a multipart upload (real SeaweedFS) or written in place (a folder),
committed only when every check passes, aborted otherwise — nothing visible, no multipart upload left pending.

Real gunicorn services; the returns are written by the runtime's own ``finish()`` in a child process (no kernel).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import socket
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from nbpack import clock
from nbpack.store import blobs
from nbpack.store.backends import S3Storage, put_headers
from nbpack.store.keys import blob_key, upload_key
from tests.integration import test_direct_upload as du
from tests.integration.test_direct_upload import MIB, RUN, Setup, _call, _rid, _setup

BIG = 20 * MIB  # three 8 MiB parts
RUN_BIG = RUN.replace(str(5 * MIB), str(BIG))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_direct_upload's bundle (its fixture, called here: pytest does not share fixtures between modules)."""
    return du.built.__wrapped__(tmp_path_factory)  # type: ignore[attr-defined]


def _client(s3_env):  # noqa: ANN001, ANN202
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_env.endpoint,
        aws_access_key_id=s3_env.access_key,
        aws_secret_access_key=s3_env.secret_key,
        region_name="us-east-1",
    )


def _pending(s3, bucket: str) -> list[str]:  # noqa: ANN001
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _stored(st: Setup) -> list[str]:
    return [i.key for i in st.storage.list(f"returns/{st.bid}/")]


def _make(st: Setup, tmp_path: Path, seed: int) -> Path:
    """A valid return zip with a BIG random output, written by the runtime (not sent)."""
    saved, du.RUN = du.RUN, RUN_BIG
    try:
        path, _ = st.run(seed, tmp_path / f"r{seed}.zip", upload=False)
    finally:
        du.RUN = saved
    assert path.stat().st_size > BIG
    return path


def _post(st: Setup, data: bytes, rid: str | None) -> tuple[int, dict]:
    returns = st.manifest["returns"]
    headers = {"Authorization": f"Bearer {returns['token']}", "Content-Type": "application/zip"}
    if rid is not None:
        headers["X-Nbpack-Return-Id"] = rid
    status, body = _call(returns["endpoint"], data=data, method="POST", headers=headers)
    return status, json.loads(body)


def _chunked(st: Setup, chunks: list[bytes], rid: str) -> tuple[int, bytes]:
    """POST ``chunks`` as a chunked body (no Content-Length); the answer, even if it came before the body ended."""
    returns = st.manifest["returns"]
    url = urlsplit(returns["endpoint"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("POST", url.path)
    for name, value in (
        ("Authorization", f"Bearer {returns['token']}"),
        ("Content-Type", "application/zip"),
        ("Transfer-Encoding", "chunked"),
        ("X-Nbpack-Return-Id", rid),
    ):
        conn.putheader(name, value)
    conn.endheaders()
    try:
        for chunk in chunks:
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the service answered (and closed) before the body ended: its answer is still there to read
    resp = conn.getresponse()
    try:
        return resp.status, resp.read()
    finally:
        conn.close()


def _tampered(path: Path) -> bytes:
    """The same zip with one byte of the big output changed (its manifest sha256 no longer matches)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "outputs/big.bin":
                data = bytes([data[0] ^ 1]) + data[1:]
            dst.writestr(info, data)
    return out.getvalue()


def _wait_until(check, timeout: float = 20.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_big_return_is_teed_to_a_multipart_upload(
    s3_env, s3_bucket: str, start_service, built: Path, tmp_path: Path
) -> None:
    # Direct uploads off: the runtime's upload() then POSTs the whole zip, output included (the path under test).
    st = _setup(
        start_service, built, tmp_path, f"s3://{s3_bucket}/nbpack", s3_env.endpoint, direct_upload_threshold="0"
    )
    s3 = _client(s3_env)
    full = _make(st, tmp_path, 1)
    rid = _rid(full)

    # The runtime's upload() announces the id: the zip is stored by a multipart upload, byte for byte.
    answer, _ = st.upload(full)
    assert answer["id"] == rid and st.returns() == [rid]
    key = f"nbpack/returns/{st.bid}/{rid}/return.zip"
    head = s3.head_object(Bucket=s3_bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # 3 parts: it went by multipart, not one PUT
    stored = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(full.read_bytes()).digest()
    assert _pending(s3, s3_bucket) == []

    # A retry of the stored return: 200, its upload aborted, the stored zip not rewritten.
    status, body = _post(st, full.read_bytes(), rid)
    assert status == 200 and body["id"] == rid, body
    assert _pending(s3, s3_bucket) == []
    assert s3.head_object(Bucket=s3_bucket, Key=key)["ETag"] == head["ETag"]

    # Without the header the old path (spool, then store) still takes it.
    other = _make(st, tmp_path, 2)
    status, body = _post(st, other.read_bytes(), None)
    assert status == 201 and body["id"] == _rid(other), body
    assert sorted(st.returns()) == sorted([rid, _rid(other)])


def test_invalid_big_return_leaves_no_object_and_no_upload(
    s3_env, s3_bucket: str, start_service, built: Path, tmp_path: Path
) -> None:
    st = _setup(
        start_service,
        built,
        tmp_path,
        f"s3://{s3_bucket}/nbpack",
        s3_env.endpoint,
        max_return_bytes=str(40 * MIB),
    )
    s3 = _client(s3_env)
    full = _make(st, tmp_path, 3)
    rid, data = _rid(full), full.read_bytes()

    # A bad sha256 of an output.
    status, body = _post(st, _tampered(full), rid)
    assert status == 400 and body["error"] == "invalid_bundle", body
    # A truncated body (the zip's end, its directory and manifest, missing).
    status, body = _post(st, data[: 18 * MIB], rid)
    assert status == 400, body
    # Another return's id announced.
    status, body = _post(st, data, "r-" + "0" * 24)
    assert status == 400 and body["error"] == "return_id_mismatch", body
    # A malformed announcement is refused before any byte is stored.
    status, body = _post(st, data[:4096], "../x")
    assert status == 400 and body["error"] == "invalid_input", body
    # Over the size limit, found mid-stream (chunked: no Content-Length to refuse it by).
    status, body = _chunked(st, [data[i : i + MIB] for i in range(0, len(data), MIB)] * 2, rid)
    assert status in (400, 413), body

    assert _stored(st) == [] and st.returns() == []
    assert _wait_until(lambda: _pending(s3, s3_bucket) == []), _pending(s3, s3_bucket)

    # The valid one still goes through after all that.
    status, body = _post(st, data, rid)
    assert status == 201 and body["id"] == rid, body


def test_client_gone_mid_body_aborts_the_upload(
    s3_env, s3_bucket: str, start_service, built: Path, tmp_path: Path
) -> None:
    st = _setup(start_service, built, tmp_path, f"s3://{s3_bucket}/nbpack", s3_env.endpoint)
    s3 = _client(s3_env)
    full = _make(st, tmp_path, 4)
    data = full.read_bytes()
    returns = st.manifest["returns"]
    url = urlsplit(returns["endpoint"])
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {returns['token']}\r\n"
        f"Content-Type: application/zip\r\nContent-Length: {len(data)}\r\nX-Nbpack-Return-Id: {_rid(full)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    try:
        sock.sendall(head + data[: 17 * MIB])
        # Parts are being stored while the body arrives: the upload exists before the body is whole.
        assert _wait_until(lambda: _pending(s3, s3_bucket) != []), "no multipart upload while the body arrives"
    finally:
        sock.close()
    assert _wait_until(lambda: _pending(s3, s3_bucket) == []), _pending(s3, s3_bucket)
    assert _stored(st) == [] and st.returns() == []


def test_gc_aborts_an_abandoned_upload(s3_env, s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, "nbpack", endpoint_url=s3_env.endpoint)
    s3 = _client(s3_env)
    key = "nbpack/returns/h-" + "1" * 24 + "/r-" + "2" * 24 + "/return.zip"
    up = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)
    s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"x" * MIB)
    # A young upload may still be arriving: kept.
    assert storage.stager.abort_stale("returns/", clock.now() - timedelta(hours=1)) == []
    assert storage.stager.abort_stale("returns/", clock.now() + timedelta(minutes=1), dry_run=True) == [key[7:]]
    assert _pending(s3, s3_bucket) == [key]
    assert storage.stager.abort_stale("returns/", clock.now() + timedelta(minutes=1)) == [key[7:]]
    assert _pending(s3, s3_bucket) == []


def test_folder_backend_writes_the_return_in_place(start_service, built: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    st = _setup(start_service, built, tmp_path, str(root), None)
    full = _make(st, tmp_path, 5)
    rid, data = _rid(full), full.read_bytes()
    status, body = _post(st, _tampered(full), rid)
    assert status == 400, body
    assert not (root / "returns" / st.bid).exists()  # no temp file, no folder left
    status, body = _post(st, data, rid)
    assert status == 201, body
    folder = root / "returns" / st.bid / rid
    assert (folder / "return.zip").read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "return.zip"]


class _CountingReads:
    """``inner`` with its whole-object reads counted (what a verification by re-reading costs)."""

    def __init__(self, inner: S3Storage) -> None:
        self.inner, self.reads = inner, 0

    def iter_chunks(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self.reads += 1
        return self.inner.iter_chunks(*args, **kwargs)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


def test_a_presigned_blob_is_verified_by_the_checksum_s3_checked(s3_env, s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, "nbpack", endpoint_url=s3_env.endpoint)
    bid = "h-" + "3" * 24
    data = bytes(range(256)) * 4096  # 1 MiB
    sha = hashlib.sha256(data).hexdigest()
    key = upload_key(bid, sha, "n1")
    url = storage.presigned_put(key, 300, size=len(data), sha256=sha)
    assert url is not None
    # SeaweedFS refuses a body that does not match the signed x-amz-checksum-sha256, and stores nothing.
    status, body = _call(url, data=bytes(reversed(data)), method="PUT", headers=put_headers(len(data), sha))
    assert status == 400 and b"BadDigest" in body, (status, body[:200])
    assert not storage.exists(key)
    status, _ = _call(url, data=data, method="PUT", headers=put_headers(len(data), sha))
    assert status == 200
    assert storage.stat(key).sha256 == sha  # the checksum S3 verified, trusted (the probe found it enforced)

    counting = _CountingReads(storage)
    record = blobs.verify(counting, bid, "outputs/big.bin", {"sha256": sha, "bytes": len(data)})  # type: ignore[arg-type]
    assert counting.reads == 0  # no re-read of the blob
    assert record["key"] == blob_key(bid, sha) and record["bytes"] == len(data)
    assert storage.read_bytes(blob_key(bid, sha)) == data and not storage.exists(key)


def test_a_create_once_url_writes_the_blob_itself_and_never_replaces_it(s3_env, s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, "nbpack", endpoint_url=s3_env.endpoint)
    bid = "h-" + "4" * 24
    data = bytes(range(256)) * 4096  # 1 MiB
    sha = hashlib.sha256(data).hexdigest()
    config = type("Cfg", (), {"return_limits": type("L", (), {"max_member": 1 << 30})()})()
    answer = blobs.upload_url(storage, config, True, bid, {"sha256": sha, "bytes": len(data)})  # type: ignore[arg-type]
    # SeaweedFS enforces If-None-Match and the checksum: the URL is for the blob's own key, create-once.
    assert answer["key"] == blob_key(bid, sha) and answer["headers"]["If-None-Match"] == "*", answer
    url, headers = answer["url"], answer["headers"]
    # Without the condition the signature does not match; other bytes fail the checksum: nothing is stored.
    unconditional = {k: v for k, v in headers.items() if k != "If-None-Match"}
    status, body = _call(url, data=data, method="PUT", headers=unconditional)
    assert status == 403, (status, body[:200])
    status, body = _call(url, data=bytes(reversed(data)), method="PUT", headers=headers)
    assert status == 400 and b"BadDigest" in body, (status, body[:200])
    assert not storage.exists(blob_key(bid, sha))
    status, _ = _call(url, data=data, method="PUT", headers=headers)
    assert status == 200
    etag = storage.stat(blob_key(bid, sha)).etag
    # The same URL again (a retry, a second upload of the output): 412, the blob untouched.
    status, _ = _call(url, data=data, method="PUT", headers=headers)
    assert status == 412
    assert storage.stat(blob_key(bid, sha)).etag == etag
    # Ingest trusts the checksum the store verified: no read, no copy, no upload keys.
    counting = _CountingReads(storage)
    record = blobs.verify(counting, bid, "outputs/big.bin", {"sha256": sha, "bytes": len(data)})  # type: ignore[arg-type]
    assert counting.reads == 0
    assert record["key"] == blob_key(bid, sha) and record["etag"] == etag
    assert [i.key for i in storage.list(f"blobs/{bid}/")] == [blob_key(bid, sha)]
    # Now it exists: no URL is handed out for it again.
    again = blobs.upload_url(storage, config, True, bid, {"sha256": sha, "bytes": len(data)})  # type: ignore[arg-type]
    assert again == {"exists": True, "key": blob_key(bid, sha)}
