"""Presigned blob uploads on real gunicorn + SeaweedFS: fresh keys bound to length and sha256, verified blobs never
signed again nor overwritten."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from nbpack.bundle.returns import return_id_for
from tests.integration.test_direct_upload import BIG, Setup, _big_bytes, _call, _rid, _sha, built, direct  # noqa: F401

SMALL = b"another small output\n"


def _resized(full: Path, member: str, size: int) -> bytes:
    """A new return (another small.txt, so another id) with ``member`` external and its declared size changed."""
    out = io.BytesIO()
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        manifest = json.loads(src.read("nbpack-return.json"))
        for group in ("outputs", "contents"):
            for o in manifest.get(group, []):
                if o["path"] == member:
                    o["bytes"] = size
                    if group == "outputs":
                        o["external"] = "blob"
                if o["path"] == "outputs/small.txt":
                    o["bytes"], o["sha256"] = len(SMALL), _sha(SMALL)
        manifest["id"] = return_id_for(manifest)
        for name in src.namelist():
            if name == "nbpack-return.json":
                dst.writestr(name, json.dumps(manifest, indent=2))
            elif name == "outputs/small.txt":
                dst.writestr(name, SMALL)
            elif name != member:
                dst.writestr(name, src.read(name))
    return out.getvalue()


def test_verified_blob_is_never_signed_again(direct: Setup, tmp_path: Path) -> None:  # noqa: F811
    st = direct
    full, out = st.run(1, tmp_path / "r1.zip", upload=True)
    assert "uploaded straight to the object store" in out, out
    rid, sha = _rid(full), _sha(_big_bytes(1))
    final = f"blobs/{st.bid}/{sha}"
    etag = st.storage.stat(final).etag
    assert [i.key for i in st.storage.list(f"blobs/{st.bid}/")] == [final], "uploads are cleared after the copy"

    # The attack: the existing sha256 with another size. No URL, a 409 naming the sizes.
    status, answer = st.ask_blob(sha, BIG + 10)
    assert status == 409 and answer["error"] == "blob_mismatch" and f"holds {BIG} bytes" in answer["message"]
    status, answer = st.ask_blob(sha, BIG)
    assert status == 200 and answer == {"exists": True, "key": final}

    # A return claiming that sha256 with another size is refused; the verified blob stays and still serves.
    status, answer = st.post(_resized(full, "outputs/big.bin", BIG - 1))
    assert status == 400 and answer["error"] == "blob_mismatch" and f"holds {BIG} bytes" in answer["message"], answer
    assert st.storage.stat(final).etag == etag
    status, data = st.file(rid, "outputs/big.bin")
    assert status == 200 and _sha(data) == sha


def test_upload_url_takes_only_the_declared_bytes(direct: Setup) -> None:  # noqa: F811
    st = direct
    data = _big_bytes(7)
    sha = _sha(data)
    status, one = st.ask_blob(sha, len(data))
    assert status == 200 and one["method"] == "PUT"
    status, two = st.ask_blob(sha, len(data))
    # SeaweedFS enforces If-None-Match and the sha256 checksum: every URL creates the blob's own key, once.
    assert one["key"] == two["key"] == f"blobs/{st.bid}/{sha}"
    for answer in (one, two):
        signed = parse_qs(urlsplit(answer["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
        assert {"content-length", "x-amz-checksum-sha256", "if-none-match", "host"} <= set(signed), signed
        assert answer["headers"]["Content-Length"] == str(len(data))

    url, headers = one["url"], one["headers"]
    # Other bytes of the same length: the store's checksum refuses them.
    status, body = _call(url, data=_big_bytes(8), method="PUT", headers=headers)
    assert status == 400 and b"BadDigest" in body, body
    # Another length: the signature no longer matches.
    status, body = _call(url, data=data + b"x", method="PUT", headers={**headers, "Content-Length": str(len(data) + 1)})
    assert status == 403 and b"SignatureDoesNotMatch" in body
    # Without the signed headers: refused too.
    status, body = _call(url, data=data, method="PUT", headers={"Content-Length": str(len(data))})
    assert status == 403
    assert list(st.storage.list(f"blobs/{st.bid}/")) == []
    status, body = _call(url, data=data, method="PUT", headers=headers)
    assert status == 200, body
    assert [i.key for i in st.storage.list(f"blobs/{st.bid}/")] == [one["key"]]
