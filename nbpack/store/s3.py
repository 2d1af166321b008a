"""Storage in an S3 bucket (boto3, imported only here and only when an S3 backend is opened)."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from nbpack.config import DEFAULT_S3_REGION
from nbpack.errors import InvalidInput, NoConditionalWrites, NotFound, StorageError
from nbpack.store import api, s3_client, s3_compose
from nbpack.store.api import CHUNK, PART_SIZE, TMP_PREFIX, ObjectInfo, check_key, check_prefix, check_range, sized
from nbpack.store.disposition import content_disposition
from nbpack.store.s3_checksums import create_once_ok, put_headers, sha256_b64, sha256_hex, verifies_sha256
from nbpack.store.s3_errors import S3Body, translated
from nbpack.store.s3_multipart import MultipartStager

__all__ = ["S3Storage", "put_headers"]


class S3Storage:
    """Objects in an S3 bucket under an optional prefix (path-style addressing, works with SeaweedFS)."""

    supports_presigned_put = True

    def __init__(
        self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str = DEFAULT_S3_REGION
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        if not bucket:
            raise InvalidInput("S3 storage URL has no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.client = s3_client.make(endpoint_url, region)
        # parts of 8 MiB and at most 4 in flight keep an upload's memory near 32 MiB whatever its size
        self.transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4, use_threads=True
        )
        # s3transfer buffers up to 10 parts of a non-seekable stream by default; boto3's config has no alias
        self.transfer.max_in_memory_upload_chunks = 4
        self._where = endpoint_url or "AWS S3"
        self._conditional: bool | None = None  # does the server honour If-None-Match? (asked once, on first use)
        self._checks_sha256: bool | None = None  # does it refuse a wrong x-amz-checksum-sha256? (likewise)
        # Staged writes (store.staging): uploads teed to multipart uploads, and gc's cleanup of abandoned ones.
        self.stager = MultipartStager(self)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translated(what, self.bucket, self._where)

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream (multipart above 8 MiB); S3 shows the object only when the upload completes."""
        full = self._key(key)
        with self._errors(key):
            self.client.upload_fileobj(sized(stream, size), self.bucket, full, Config=self.transfer)
        return self.stat(key)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file: one PUT when small, multipart above the threshold."""
        full = self._key(key)
        size = Path(path).stat().st_size
        if size <= self.transfer.multipart_threshold:
            # boto3's transfer manager costs a thread pool and a HEAD per call; a plain PUT is one request.
            with self._errors(key), open(path, "rb") as f:
                r = self.client.put_object(Bucket=self.bucket, Key=full, Body=f, ContentLength=size)
            return ObjectInfo(key=key, size=size, etag=str(r.get("ETag", "")).strip('"') or None)
        with self._errors(key):
            self.client.upload_file(str(path), self.bucket, full, Config=self.transfer)
        return self.stat(key)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store a small byte string in one request."""
        full = self._key(key)
        with self._errors(key):
            r = self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        return ObjectInfo(key=key, size=len(data), etag=str(r.get("ETag", "")).strip('"') or None)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create once: a conditional PUT, preceded by a HEAD only on a server found to ignore If-None-Match."""
        if self._conditional is None:
            self._conditional = self._honours_if_none_match()
        if not self._conditional and self.exists(key):
            return False
        try:
            with self._errors(key):
                created = self._put_new(self._key(key), data)
                if created is None:
                    self._conditional = False
                    self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
                    created = True
        except NotFound:
            raise StorageError(f"S3 could not create {key}") from None
        return created

    def _put_new(self, full: str, data: bytes) -> bool | None:
        """PUT with If-None-Match: True if written, False if the key exists, None if the server refuses the header."""
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return False
            if code == "NotImplemented" or status == 501:
                return None
            raise
        return True

    def read_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its ETag, from one GET."""
        r = self._get(key)
        with S3Body(r["Body"], self._errors, key) as body:
            return body.read(), str(r.get("ETag", "")).strip('"')

    def put_if_match(self, key: str, data: bytes, tag: str | None) -> str | None:
        """One PUT with If-Match (``tag``) or If-None-Match (None); the new ETag, or None when the object changed."""
        from botocore.exceptions import ClientError

        if self._conditional is None:
            self._conditional = self._honours_if_none_match()
        if not self._conditional:
            raise NoConditionalWrites(f"{self._where} ignores conditional writes: quotas cannot be kept on it")
        cond = {"IfMatch": f'"{tag}"'} if tag is not None else {"IfNoneMatch": "*"}
        try:
            with self._errors(key):
                r = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **cond)
        except (StorageError, NotFound) as e:
            err = e.__cause__.response if isinstance(e.__cause__, ClientError) else {}
            code, status = err.get("Error", {}).get("Code"), err.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (404, 409, 412):
                return None
            raise
        return str(r.get("ETag", "")).strip('"')

    def _honours_if_none_match(self) -> bool:
        """Write a hidden probe twice with If-None-Match, then once with a wrong If-Match: a server that lets the
        second or the third through ignores them (SeaweedFS 4 and AWS S3 honour both)."""
        from botocore.exceptions import ClientError

        probe = self._key("probe") + f"/{TMP_PREFIX}conditional-{uuid.uuid4().hex}"
        try:
            with self._errors("a conditional-write probe"):
                first = self._put_new(probe, b"")
                second = self._put_new(probe, b"") if first else None
                try:
                    self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"x", IfMatch='"0"')
                    third = False
                except ClientError as e:
                    third = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412
                self.client.delete_object(Bucket=self.bucket, Key=probe)
        except StorageError:
            return False  # unknown: keep the HEAD
        return bool(first) and second is False and third

    def _get(self, key: str, range_header: str | None = None) -> Any:
        full = self._key(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if range_header:
            kwargs["Range"] = range_header
        with self._errors(key):
            return self.client.get_object(**kwargs)

    def open(self, key: str) -> BinaryIO:
        """A streaming reader over the object's body."""
        body = self._get(key)["Body"]
        return io.BufferedReader(S3Body(body, self._errors, key), CHUNK)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start..end`` of the object, ``end`` inclusive as in HTTP Range (None = to the end)."""
        from botocore.exceptions import ClientError

        check_range(start, end)
        rng = None
        if start or end is not None:
            rng = f"bytes={start}-" + ("" if end is None else str(end))
        try:
            body = self._get(key, rng)["Body"]
        except StorageError as e:
            # a range starting past the end is empty, as with local files
            if (
                isinstance(e.__cause__, ClientError)
                and e.__cause__.response.get("Error", {}).get("Code") == "InvalidRange"
            ):
                return iter(())
            raise
        return self._chunks(S3Body(body, self._errors, key), chunk_size)

    def _chunks(self, body: S3Body, chunk_size: int) -> Iterator[bytes]:
        # Read botocore's body directly: going through readinto would copy every chunk once more.
        raw, key = body._body, body._key
        with body:
            while True:
                with self._errors(key):
                    data = raw.read(chunk_size)
                if not data:
                    return
                yield data

    def read_bytes(self, key: str) -> bytes:
        """Whole object in memory: small objects only."""
        body = self._get(key)["Body"]
        with self._errors(key), body:
            return body.read()

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        """Download to a local path via a temp file beside it, atomically."""
        info = self.stat(key)

        def fill(out: BinaryIO) -> None:
            with self._errors(key):
                self.client.download_fileobj(self.bucket, self._key(key), out, Config=self.transfer)

        api.download_atomically(path, fill)
        return info

    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and modification time from HEAD; raises NotFound."""
        full = self._key(key)
        with self._errors(key):
            r = self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        stored = r.get("ChecksumSHA256")
        return ObjectInfo(
            key=key,
            size=int(r["ContentLength"]),
            etag=str(r.get("ETag", "")).strip('"') or None,
            modified=r.get("LastModified"),
            # A multipart object's checksum is one of its parts' checksums ("…-N"): not the bytes' sha256.
            sha256=sha256_hex(stored) if stored and "-" not in stored and verifies_sha256(self) else None,
        )

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """All objects whose key starts with ``prefix``, sorted by key, paged 1000 at a time."""
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[ObjectInfo] = []
        with self._errors(prefix or "(all)"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    key = self._rel(obj["Key"])
                    if any(p.startswith(TMP_PREFIX) for p in key.split("/")):
                        continue
                    found.append(
                        ObjectInfo(
                            key=key,
                            size=int(obj["Size"]),
                            etag=str(obj.get("ETag", "")).strip('"') or None,
                            modified=obj.get("LastModified"),
                        )
                    )
        # SeaweedFS lists folder by folder ("a/b" before "a-c"), not in S3's byte order: sort here
        found.sort(key=lambda info: info.key)
        yield from found

    def delete(self, key: str) -> None:
        """Remove the object; no error if absent."""
        full = self._key(key)
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` in batches of 1000; returns how many."""
        count = 0
        batch: list[dict[str, str]] = []

        def flush() -> None:
            with self._errors(prefix):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            batch.clear()

        for info in self.list(prefix):
            batch.append({"Key": self._key(info.key)})
            count += 1
            if len(batch) == 1000:
                flush()
        if batch:
            flush()
        return count

    def touch(self, key: str) -> ObjectInfo:
        """Set LastModified to now by copying the object onto itself (raises NotFound); the bytes stay put."""
        full = self._key(key)
        source = {"Bucket": self.bucket, "Key": full}
        with self._errors(key):
            # S3 refuses a self-copy that changes nothing: replacing the (empty) metadata is the change.
            self.client.copy(
                source, self.bucket, full, ExtraArgs={"MetadataDirective": "REPLACE"}, Config=self.transfer
            )
        return self.stat(key)

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        """A time-limited GET URL, optionally asking the browser to save as ``filename``."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        with self._errors(key):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(expires))

    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None, create_once: bool = False
    ) -> str | None:
        """A time-limited PUT URL for a direct upload, bound to ``size`` and ``sha256`` (hex) when given.

        Both become signed headers (``Content-Length``, ``x-amz-checksum-sha256``) the uploader must send as
        :func:`put_headers` gives them: another length breaks the signature, other bytes fail the store's checksum.
        ``create_once`` also signs ``If-None-Match: *`` (the URL can create ``key``, never replace it); None unless
        this server enforces both that and the sha256 (``s3_checksums.create_once_ok``).
        """
        if create_once and (sha256 is None or not create_once_ok(self)):
            return None
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if size is not None:
            params["ContentLength"] = int(size)
        if sha256 is not None:
            params["ChecksumSHA256"] = sha256_b64(sha256)
        if create_once:
            params["IfNoneMatch"] = "*"
        with self._errors(key):
            return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=int(expires))

    def compose(self, key: str, sources: Sequence[tuple[str, int]]) -> ObjectInfo:
        """Write ``key`` as the concatenation of ``sources`` ([key, size]) inside the bucket: one source by S3's
        own (multipart) copy, several by ``s3_compose``'s upload of copied ranges; no byte of a big source moves
        through this process."""
        if len(sources) == 1:
            return self._copy(sources[0][0], key)
        s3_compose.compose(
            self.client,
            self.bucket,
            self._key(key),
            sources,
            self._key,
            lambda src, s, e: self.iter_chunks(src, CHUNK, s, e),
            self._errors,
        )
        return self.stat(key)

    def _copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy an object inside the bucket (multipart copy above the part size)."""
        with self._errors(src):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._key(src)}, self.bucket, self._key(dst), Config=self.transfer
            )
        return self.stat(dst)

    def ping(self) -> None:
        """Raise StorageError unless the bucket exists and the credentials may use it."""
        from botocore.exceptions import ClientError

        try:
            with self._errors(self.bucket):
                self.client.head_bucket(Bucket=self.bucket)
        except NotFound:
            raise StorageError(f"S3 bucket {self.bucket} does not exist at {self._where}") from None
        except StorageError as e:
            if isinstance(e.__cause__, ClientError):
                status = e.__cause__.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404:
                    raise StorageError(f"S3 bucket {self.bucket} does not exist at {self._where}") from None
            raise
