"""SHA-256 checksums S3 checks for us: the headers a presigned PUT bound to a sha256 must carry, and whether the server
really refuses a body that does not match them (only then is a stored checksum worth trusting instead of a re-read)."""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING

from nbpack.errors import StorageError
from nbpack.store.api import TMP_PREFIX

if TYPE_CHECKING:
    from nbpack.store.s3 import S3Storage

__all__ = ["create_once_ok", "put_headers", "sha256_b64", "sha256_hex", "verifies_sha256"]

# What S3 (BadDigest, XAmzContentChecksumMismatch) and SeaweedFS (BadDigest) answer a body that fails its checksum.
_MISMATCH = {"BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest"}


def put_headers(size: int, sha256: str, *, create_once: bool = False) -> dict[str, str]:
    """The headers a PUT to ``presigned_put(key, …, size=size, sha256=sha256, create_once=…)`` must carry (they are
    signed)."""
    headers = {"Content-Length": str(int(size)), "x-amz-checksum-sha256": sha256_b64(sha256)}
    if create_once:
        headers["If-None-Match"] = "*"
    return headers


def create_once_ok(s3: S3Storage) -> bool:
    """May a presigned PUT write a final key itself? Only where the server refuses both a second write of an existing
    key under ``If-None-Match: *`` and a body failing its ``x-amz-checksum-sha256`` (both probed once): then the
    object at the key can only ever be the declared bytes, and no URL can replace them."""
    if s3._conditional is None:
        s3._conditional = s3._honours_if_none_match()
    return s3._conditional and verifies_sha256(s3)


def sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def sha256_hex(b64: str) -> str | None:
    try:
        return base64.b64decode(b64, validate=True).hex()
    except ValueError:
        return None


def verifies_sha256(s3: S3Storage) -> bool:
    """Does the server refuse a PUT whose body does not match its x-amz-checksum-sha256? Asked once per storage by a
    hidden probe: a stored checksum is trusted only where it was checked (a server that merely keeps the header
    would let an uploader name any sha256). SeaweedFS 4 and AWS S3 refuse it."""
    if s3._checks_sha256 is None:
        from botocore.exceptions import ClientError

        probe = s3._key("probe") + f"/{TMP_PREFIX}checksum-{uuid.uuid4().hex}"
        try:
            with s3._errors("a checksum probe"):
                try:
                    s3.client.put_object(
                        Bucket=s3.bucket, Key=probe, Body=b"nbpack", ChecksumSHA256=sha256_b64("00" * 32)
                    )
                    s3._checks_sha256 = False
                except ClientError as e:
                    if e.response.get("Error", {}).get("Code") not in _MISMATCH:
                        raise
                    s3._checks_sha256 = True
                s3.client.delete_object(Bucket=s3.bucket, Key=probe)
        except StorageError:
            return False  # unknown this time: not trusted, asked again later
    return s3._checks_sha256
