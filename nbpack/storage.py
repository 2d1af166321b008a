"""Object storage for bundles: one small interface, a local-folder backend and an S3 backend.

Objects are immutable and written atomically (visible only when complete). Nothing here reads a whole
object into memory except ``read_bytes``, which is meant for small objects such as manifests.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from nbpack.config import DEFAULT_S3_REGION, s3_endpoint_from_env, s3_region_from_env
from nbpack.disposition import content_disposition
from nbpack.errors import Conflict, InvalidInput, NotFound, StorageError

__all__ = ["ObjectInfo", "Storage", "LocalStorage", "S3Storage", "open_storage", "check_key", "put_headers"]

CHUNK = 1 << 20
PART_SIZE = 8 << 20
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows about one stored object."""

    key: str
    size: int
    etag: str | None = None
    modified: datetime | None = None


@runtime_checkable
class Storage(Protocol):
    """The interface every backend offers; keys are ``/``-separated relative strings."""

    url: str
    # What the backend can do, asked of the interface rather than of the class: presigned PUT URLs (direct upload).
    supports_presigned_put: bool

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo: ...
    def put_file(self, key: str, path: Path) -> ObjectInfo: ...
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...
    def put_if_absent(self, key: str, data: bytes) -> bool: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_chunks(
        self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]: ...
    def read_bytes(self, key: str) -> bytes: ...
    def download_to(self, key: str, path: Path) -> ObjectInfo: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def touch(self, key: str) -> ObjectInfo: ...
    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None: ...
    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None
    ) -> str | None: ...
    def copy(self, src: str, dst: str) -> ObjectInfo: ...
    def ping(self) -> None: ...


# ---------------------------------------------------------------- keys


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``InvalidInput``."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("storage key is empty")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidInput(f"storage key {key!r} is absolute or contains a backslash or NUL")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidInput(f"storage key {key!r} has an empty, '.' or '..' segment")
        # temp names are how unfinished writes are hidden; a real key must never look like one
        if part.startswith(TMP_PREFIX):
            raise InvalidInput(f"storage key {key!r} has a segment starting with {TMP_PREFIX!r}")
    return key


def _check_prefix(prefix: str) -> str:
    """A prefix may be empty or end in ``/``; what it has otherwise must be a valid key start."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise InvalidInput(f"invalid byte range start={start} end={end}")


class _SizedReader(io.RawIOBase):
    """Wraps a stream promised to hold exactly ``size`` bytes and fails the read that breaks the promise."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._size, self._seen = stream, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._stream.read(len(buf))
        n = len(data)
        self._seen += n
        if self._seen > self._size:
            raise InvalidInput(f"stream is longer than its declared size {self._size}")
        if n == 0 and self._seen < self._size:
            raise InvalidInput(f"stream ended after {self._seen} of {self._size} declared bytes")
        buf[:n] = data
        return n


def _sized(stream: BinaryIO, size: int | None) -> BinaryIO:
    if size is None:
        return stream
    if size < 0:
        raise InvalidInput(f"declared size {size} is negative")
    return io.BufferedReader(_SizedReader(stream, size), CHUNK)


# ---------------------------------------------------------------- local folder


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalStorage:
    """Objects as files under one folder; writes go to a ``.tmp-`` file then ``os.replace``."""

    supports_presigned_put = False

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root / key
        # a symlink inside the root could otherwise lead a key outside it
        if not path.resolve().is_relative_to(self.root):
            raise InvalidInput(f"storage key {key!r} resolves outside the storage folder")
        return path

    def _temp_beside(self, path: Path) -> tuple[int, str]:
        # a concurrent delete may remove the emptied parent between mkdir and mkstemp: retry a little
        for attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise Conflict(f"storage key {self._key_of(path)} lies under an existing object") from None
            try:
                return tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _write_temp(self, path: Path, stream: BinaryIO) -> str:
        fd, tmp = self._temp_beside(path)
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def _info(self, key: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        if not path.is_file():
            raise NotFound(f"no stored object {key}")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream; the object appears only once fully written and synced."""
        path = self._path(key)
        tmp = self._write_temp(path, _sized(stream, size))
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            os.unlink(tmp)
            raise Conflict(f"storage key {key} is a prefix of other objects") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return self._info(key, path)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Store a local file."""
        with open(path, "rb") as f:
            return self.put_stream(key, f)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store a small byte string."""
        return self.put_stream(key, io.BytesIO(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if absent (hard link fails when the name exists); True if written."""
        path = self._path(key)
        tmp = self._write_temp(path, io.BytesIO(data))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return True

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads."""
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the caller owns the handle
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        return f

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start..end`` of the object, ``end`` inclusive as in HTTP Range (None = to the end)."""
        _check_range(start, end)
        f = self.open(key)
        return self._chunks(f, chunk_size, start, end)

    @staticmethod
    def _chunks(f: BinaryIO, chunk_size: int, start: int, end: int | None) -> Iterator[bytes]:
        with f:
            f.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                data = f.read(chunk_size if left is None else min(chunk_size, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    def read_bytes(self, key: str) -> bytes:
        """Whole object in memory: small objects only."""
        with self.open(key) as f:
            return f.read()

    def download_to(self, key: str, path: Path) -> ObjectInfo:
        """Copy the object to a local path, atomically."""
        info = self.stat(key)
        path = Path(path)
        with self.open(key) as src:
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return info

    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and modification time; raises NotFound."""
        return self._info(key, self._path(key))

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """All objects whose key starts with ``prefix`` (string prefix, as on S3), sorted by key."""
        _check_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            with contextlib.suppress(NotFound):  # deleted since the walk
                yield self._info(key, self.root / key)

    def delete(self, key: str) -> None:
        """Remove the object (no error if absent) and any folders it leaves empty."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        count = 0
        for info in list(self.list(prefix)):
            self.delete(info.key)
            count += 1
        return count

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy an object (written beside, then renamed into place)."""
        return self.put_file(dst, self._path(src))

    def touch(self, key: str) -> ObjectInfo:
        """Set the object's modification time to now (raises NotFound): a reused object looks fresh to gc."""
        path = self._path(key)
        try:
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored object {key}") from None
        return self._info(key, path)

    def presigned_get(self, key: str, expires: int, filename: str | None = None) -> str | None:
        """Local storage has no presigned URLs."""
        return None

    def presigned_put(
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None
    ) -> str | None:
        """Local storage has no presigned URLs."""
        return None

    def ping(self) -> None:
        """Raise StorageError unless the folder exists and is writable."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage folder {self.root} is missing or not writable")


# ---------------------------------------------------------------- S3


def put_headers(size: int, sha256: str) -> dict[str, str]:
    """The headers a PUT to ``presigned_put(key, …, size=size, sha256=sha256)`` must carry (they are signed)."""
    return {"Content-Length": str(int(size)), "x-amz-checksum-sha256": _sha256_b64(sha256)}


def _sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class S3Storage:
    """Objects in an S3 bucket under an optional prefix (path-style addressing, works with SeaweedFS)."""

    supports_presigned_put = True

    def __init__(
        self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str = DEFAULT_S3_REGION
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket:
            raise InvalidInput("S3 storage URL has no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=3,
            read_timeout=20,
            tcp_keepalive=True,
        )
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        # parts of 8 MiB and at most 4 in flight keep an upload's memory near 32 MiB whatever its size
        self.transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4, use_threads=True
        )
        # s3transfer buffers up to 10 parts of a non-seekable stream by default; boto3's config has no alias
        self.transfer.max_in_memory_upload_chunks = 4
        self._where = endpoint_url or "AWS S3"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate botocore failures into NbpackErrors whose messages never carry secrets."""
        from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        try:
            yield
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                raise StorageError(f"S3 bucket {self.bucket} does not exist at {self._where}") from e
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                raise NotFound(f"no stored object {what}") from e
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
                raise StorageError(
                    f"S3 at {self._where} refused access to bucket {self.bucket} ({code}): check credentials"
                ) from e
            raise StorageError(f"S3 error {code or status} on {what} at {self._where}") from e
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise StorageError("no S3 credentials configured (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from e
        except (ConnectionError, HTTPClientError) as e:
            raise StorageError(f"S3 endpoint {self._where} unreachable ({type(e).__name__})") from e
        except IncompleteReadError as e:
            raise StorageError(f"S3 read of {what} from {self._where} was cut short") from e
        except BotoCoreError as e:
            raise StorageError(f"S3 client failure on {what} ({type(e).__name__})") from e
        except (S3UploadFailedError, S3TransferFailedError) as e:
            raise StorageError(f"S3 transfer of {what} to {self._where} failed") from e

    def put_stream(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store a stream (multipart above 8 MiB); S3 shows the object only when the upload completes."""
        full = self._key(key)
        with self._errors(key):
            self.client.upload_fileobj(_sized(stream, size), self.bucket, full, Config=self.transfer)
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
        """Create once: a HEAD first (for servers ignoring If-None-Match), then a conditional PUT."""
        from botocore.exceptions import ClientError

        full = self._key(key)
        if self.exists(key):
            return False
        try:
            with self._errors(key):
                try:
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
                except ClientError as e:
                    code = str(e.response.get("Error", {}).get("Code", ""))
                    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                    if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                        return False
                    if code != "NotImplemented" and status != 501:
                        raise
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=data)
        except NotFound:
            raise StorageError(f"S3 could not create {key}") from None
        return True

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
        return io.BufferedReader(_S3Body(body, self, key), CHUNK)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start..end`` of the object, ``end`` inclusive as in HTTP Range (None = to the end)."""
        from botocore.exceptions import ClientError

        _check_range(start, end)
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
        return self._chunks(_S3Body(body, self, key), chunk_size)

    def _chunks(self, body: _S3Body, chunk_size: int) -> Iterator[bytes]:
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
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out, self._errors(key):
                self.client.download_fileobj(self.bucket, self._key(key), out, Config=self.transfer)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return info

    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and modification time from HEAD; raises NotFound."""
        full = self._key(key)
        with self._errors(key):
            r = self.client.head_object(Bucket=self.bucket, Key=full)
        return ObjectInfo(
            key=key,
            size=int(r["ContentLength"]),
            etag=str(r.get("ETag", "")).strip('"') or None,
            modified=r.get("LastModified"),
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
        _check_prefix(prefix)
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
        self, key: str, expires: int, *, size: int | None = None, sha256: str | None = None
    ) -> str | None:
        """A time-limited PUT URL for a direct upload, bound to ``size`` and ``sha256`` (hex) when given.

        Both become signed headers (``Content-Length``, ``x-amz-checksum-sha256``) the uploader must send as
        :func:`put_headers` gives them: another length breaks the signature, other bytes fail the store's checksum.
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if size is not None:
            params["ContentLength"] = int(size)
        if sha256 is not None:
            params["ChecksumSHA256"] = _sha256_b64(sha256)
        with self._errors(key):
            return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=int(expires))

    def copy(self, src: str, dst: str) -> ObjectInfo:
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

    def create_bucket(self) -> None:
        """Create the bucket if missing (tests and first-time setup)."""
        from botocore.exceptions import ClientError

        try:
            with self._errors(self.bucket):
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except ClientError as e:
                    if e.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        raise
        except NotFound:
            raise StorageError(f"S3 could not create bucket {self.bucket}") from None


class _S3Body(io.RawIOBase):
    """A GET body as a raw stream whose network failures surface as StorageError."""

    def __init__(self, body: Any, storage: S3Storage, key: str) -> None:
        self._body, self._storage, self._key = body, storage, key

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        with self._storage._errors(self._key):
            data = self._body.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


# ---------------------------------------------------------------- opening


def open_storage(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> Storage:
    """Open storage from a folder path, a ``file://`` URL or ``s3://bucket/prefix``."""
    if not url:
        raise InvalidInput("storage URL is empty")
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if parsed.username or parsed.password or parsed.query:
            raise InvalidInput("S3 storage URL must be s3://bucket/prefix, without credentials or query")
        # Callers without a Config (tests, bench, the CLI's maintenance commands) get what the environment names.
        endpoint = endpoint_url or s3_endpoint_from_env()
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=endpoint, region=region or s3_region_from_env())
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"file storage URL {url!r} names a remote host")
        return LocalStorage(Path(unquote(parsed.path)))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise InvalidInput(f"unsupported storage URL {url.split('://', 1)[0]}:// (use a path, file:// or s3://)")
    return LocalStorage(Path(url))
