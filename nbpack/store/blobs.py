"""Large returned outputs sent straight to the object store: presigned upload URLs, then verification at ingest.

Where the store enforces both a PUT's ``x-amz-checksum-sha256`` and ``If-None-Match: *`` (S3, SeaweedFS), a URL
writes the blob's own key (``blobs/<bid>/<sha256>``) and can only create it, with exactly those bytes: nothing is
copied at ingest. Elsewhere each URL writes only its own upload key (``blobs/<bid>/uploads/<sha256>/<nonce>``) and
ingest copies a verified upload to the blob's key, which no such URL can write.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from nbpack.config import Config
from nbpack.errors import ChecksumMismatch, Conflict, InvalidBundle, InvalidInput, NotFound, TooLarge
from nbpack.store.backends import Storage, put_headers
from nbpack.store.keys import blob_key, upload_key, upload_prefix

__all__ = ["BLOB_URL_TTL", "upload_url", "verify"]

# How long a presigned PUT URL for a returned output stays usable: long enough to start the upload.
BLOB_URL_TTL = 900


def upload_url(storage: Storage, config: Config, direct: bool, bid: str, doc: Any) -> dict[str, Any]:
    """Where to PUT one large output of a return (``{sha256, bytes}``), or that it is already stored."""
    if not direct:
        raise Conflict(
            "this service stores returns in a local folder: send every output inside the return zip",
            code="direct_upload_unavailable",
        )
    if not isinstance(doc, dict):
        raise InvalidInput('send a JSON object {"sha256": hex, "bytes": n}')
    size = doc.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput("bytes must be a whole number >= 0")
    if size > config.return_limits.max_member:
        raise TooLarge(f"an output of {size} bytes is larger than the limit of {config.return_limits.max_member} bytes")
    sha256 = doc.get("sha256")
    final = blob_key(bid, sha256)  # type: ignore[arg-type]
    try:
        held = storage.stat(final).size
    except NotFound:
        held = None
    if held is not None:
        # Written by the service or by a create-once URL the store checked against the sha256: never signed again.
        if held != size:
            raise Conflict(
                f"the stored output with sha256 {sha256} holds {held} bytes, not {size}", code="blob_mismatch"
            )
        return {"exists": True, "key": final}
    # The blob's own key when the store can only let this URL create it with the declared bytes: a 1 GiB output is
    # then written once, not uploaded and copied (the copy cost the store as much CPU as the upload itself).
    key, create_once = final, True
    url = storage.presigned_put(key, BLOB_URL_TTL, size=size, sha256=sha256, create_once=True)
    if url is None:
        # Else every upload gets its own key, bound to the declared length and sha256: it can overwrite nothing.
        key, create_once = upload_key(bid, sha256, secrets.token_hex(12)), False  # type: ignore[arg-type]
        url = storage.presigned_put(key, BLOB_URL_TTL, size=size, sha256=sha256)
    if url is None:  # a backend without presigned URLs
        raise Conflict("this service's storage cannot hand out upload URLs", code="direct_upload_unavailable")
    return {
        "url": url,
        "method": "PUT",
        "headers": put_headers(size, sha256, create_once=create_once),  # type: ignore[arg-type]
        "key": key,
        "expires_in": BLOB_URL_TTL,
    }


def verify(storage: Storage, bid: str, path: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Find an external output's verified blob, or verify an upload of it and copy it into place.

    The blob ``blobs/<bid>/<sha256>`` (written by a create-once URL, or verified before) is checked by the sha256 the
    store verified as it was written, else read and hashed. Failing that, uploads to private keys
    ``blobs/<bid>/uploads/<sha256>/<nonce>``: the first whose size and streamed sha256 match is copied to the blob's
    key and the uploads are removed.
    """
    final = blob_key(bid, entry["sha256"])
    try:
        held = storage.stat(final).size
    except NotFound:
        held = None
    if held is not None and held != entry["bytes"]:
        # The manifest is wrong, not the verified blob: it stays for the returns that use it.
        raise InvalidBundle(
            f"{path}: the stored blob {final} holds {held} bytes, the manifest says {entry['bytes']}",
            code="blob_mismatch",
        )
    record = _hashed(storage, final, entry) if held is not None else None
    if record is not None:
        return record
    prefix = f"{upload_prefix(bid, entry['sha256'])}/"
    uploads = list(storage.list(prefix))
    if not uploads and held is not None:
        raise ChecksumMismatch(
            f"{path}: blob {final} does not match its sha256; it was removed, upload it again", code="blob_mismatch"
        )
    if not uploads:
        raise InvalidBundle(
            f"{path} is marked external but its blob {final} was not uploaded (POST"
            " .../returns/blobs for an upload URL first)",
            code="blob_missing",
        )
    for info in uploads:
        if _hashed(storage, info.key, entry) is not None:
            storage.compose(final, [(info.key, info.size)])
            storage.delete_prefix(prefix)
            after = storage.stat(final)
            return {"key": final, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
    raise ChecksumMismatch(
        f"{path}: no upload of its blob matches its size and sha256; they were removed, upload it again",
        code="blob_mismatch",
    )


def _hashed(storage: Storage, key: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """The record of ``key`` when it holds exactly the entry's bytes; a wrong one is removed."""
    try:
        before = storage.stat(key)
    except NotFound:
        return None
    if before.size == entry["bytes"] and before.sha256 is not None:
        # Checked by the store as it was written (presigned PUTs carry the declared sha256): no re-read of the blob.
        if before.sha256 == entry["sha256"]:
            return {"key": key, "bytes": before.size, "sha256": entry["sha256"], "etag": before.etag}
    elif before.size == entry["bytes"]:
        h = hashlib.sha256()
        for chunk in storage.iter_chunks(key, 1 << 20):
            h.update(chunk)
        after = storage.stat(key)
        if h.hexdigest() == entry["sha256"] and after.etag == before.etag and after.size == before.size:
            return {"key": key, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
    # A wrong blob would answer "exists" to every later upload of this output: remove it.
    storage.delete(key)
    return None
