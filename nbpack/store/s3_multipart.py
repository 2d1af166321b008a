"""An upload teed to an S3 multipart upload while it is spooled to local disk: its bytes cross the network once, as
they arrive, and the object appears only when the caller commits (CompleteMultipartUpload) after checking the local
copy; anything else aborts the upload. S3 shows nothing of an unfinished multipart upload to GET, HEAD or LIST.

Memory stays bounded whatever the size and however many uploads run: a part is streamed from the spool (page cache)
as botocore sends it, never held whole, with at most ``IN_FLIGHT`` parts per upload and ``WORKER_IN_FLIGHT`` per
process; a writer that outruns S3 waits for a slot (the client's TCP window then slows the client). An upload
smaller than one part never starts a multipart upload: it is one PUT at commit, as before.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpack.store.api import PART_SIZE, ObjectInfo, check_key, check_prefix

if TYPE_CHECKING:
    from nbpack.store.s3 import S3Storage

__all__ = ["IN_FLIGHT", "WORKER_IN_FLIGHT", "MultipartStage", "MultipartStager"]

log = logging.getLogger("nbpack.store.s3")

# Parts sent at once per upload: two keep the link busy while one is acknowledged.
IN_FLIGHT = 2
# Requests to S3 at once for parts, this process's uploads together (1 worker x 8 threads x 2 parts at most).
WORKER_IN_FLIGHT = 8
_worker_slots = threading.BoundedSemaphore(WORKER_IN_FLIGHT)
# One pool for the process, not one per upload: 20 uploads would otherwise start and end 40 threads, each with its
# own malloc arena keeping freed buffers (loaded bench, 1 GiB as 20 returns: worker RSS +77 MiB with per-upload pools).
_pool_lock = threading.Lock()
_shared_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _shared_pool
    with _pool_lock:
        if _shared_pool is None:
            _shared_pool = ThreadPoolExecutor(WORKER_IN_FLIGHT, thread_name_prefix="nbpack-part")
        return _shared_pool


class MultipartStage:
    """The bytes of one upload: a local spool for validation, and a multipart upload of ``key`` (see module)."""

    def __init__(self, s3: S3Storage, key: str, spool_dir: Path) -> None:
        self.s3, self.key = s3, key
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=spool_dir)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self._in = os.open(name, os.O_RDONLY)  # parts are read back from here by the sending threads
        self._size = 0  # bytes written
        self._queued = 0  # bytes handed to parts
        self._upload_id: str | None = None
        self._etags: dict[int, str] = {}
        self._futures: list[Future[None]] = []
        self._slots = threading.BoundedSemaphore(IN_FLIGHT)
        self._error: BaseException | None = None
        self._committed = False
        self._closing = False

    @property
    def size(self) -> int:
        return self._size

    def local(self) -> Path:
        return self.path

    # -- writing --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self._raise_failure()
        self._out.write(data)
        self._size += len(data)
        if self._size - self._queued >= PART_SIZE:
            self._send_pending()

    def seal(self) -> None:
        """Every byte arrived: the local copy is complete, the last part goes out while the caller validates."""
        self._out.close()
        if self._upload_id is not None and self._size > self._queued:
            self._send_pending()

    def _send_pending(self) -> None:
        # Parts may differ in size (each >= 5 MiB but the last): a part is whatever is unsent.
        if not self._out.closed:
            self._out.flush()  # the sending thread reads it back through its own descriptor
        offset, length = self._queued, self._size - self._queued
        self._queued = self._size
        if self._upload_id is None:
            with self.s3._errors(self.key):
                r = self.s3.client.create_multipart_upload(Bucket=self.s3.bucket, Key=self.s3._key(self.key))
            self._upload_id = str(r["UploadId"])
        number = len(self._futures) + 1
        self._slots.acquire()  # bounded memory: wait while this upload's parts are still being sent...
        _worker_slots.acquire()  # ...and while the process sends its share
        self._futures.append(_pool().submit(self._upload_part, number, offset, length))

    def _upload_part(self, number: int, offset: int, length: int) -> None:
        try:
            if self._error is not None or (self._closing and not self._committed):
                return  # the upload failed already or is being dropped: it will be aborted
            # Streamed from the spool (page cache) in botocore's own reads: no part is ever whole in memory, so 20
            # uploads at once cost a few MiB, not 8 MiB per part in flight (which glibc kept per thread arena).
            with self.s3._errors(self.key), _Window(self._in, offset, length) as body:
                r = self.s3.client.upload_part(
                    Bucket=self.s3.bucket,
                    Key=self.s3._key(self.key),
                    UploadId=self._upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=length,
                )
            self._etags[number] = str(r["ETag"])
        except BaseException as exc:  # kept for the writer's thread, which raises it
            self._error = exc
        finally:
            _worker_slots.release()
            self._slots.release()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _wait(self) -> None:
        for f in self._futures:
            f.result()

    # -- ending ---------------------------------------------------------------------------------

    def commit(self, key: str) -> ObjectInfo:
        """Make the object visible: one PUT of the spool when small, else complete the multipart upload."""
        if key != self.key:
            raise ValueError(f"staged for {self.key}, not {key}")
        if self._upload_id is None:
            info = self.s3.put_file(key, self.path)
            self._committed = True
            return info
        self._wait()
        self._raise_failure()
        parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        with self.s3._errors(key):
            r = self.s3.client.complete_multipart_upload(
                Bucket=self.s3.bucket,
                Key=self.s3._key(key),
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        self._committed = True
        return ObjectInfo(key=key, size=self._size, etag=str(r.get("ETag", "")).strip('"') or None)

    def close(self) -> None:
        """Drop the local copy; an upload not committed is aborted (its parts freed, nothing visible)."""
        with contextlib.suppress(OSError):
            self._out.close()
        # Waited for, not cancelled: a part still being sent would outlive an abort, and a cancelled one would never
        # give its slots back. One not started yet sees _closing and sends nothing.
        self._closing = True
        for f in self._futures:
            f.result()
        with contextlib.suppress(OSError):
            os.close(self._in)
        self.path.unlink(missing_ok=True)
        if self._upload_id is not None and not self._committed:
            upload_id, self._upload_id = self._upload_id, None
            try:
                with self.s3._errors(self.key):
                    self.s3.client.abort_multipart_upload(
                        Bucket=self.s3.bucket, Key=self.s3._key(self.key), UploadId=upload_id
                    )
            except Exception:
                # gc aborts it later (abort_stale); the caller's own error is the one to report
                log.warning("could not abort a multipart upload", extra={"key": self.key}, exc_info=True)


class _Window(io.RawIOBase):
    """Bytes ``offset .. offset+length`` of an open file, as a seekable stream (botocore hashes, rewinds, sends)."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        super().__init__()
        self._fd, self._start, self._len, self._pos = fd, offset, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._len}[whence]
        self._pos = max(0, min(self._len, base + pos))
        return self._pos

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self._len - self._pos)
        if n <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(buf)[:n]], self._start + self._pos)
        if got == 0:
            raise OSError("the spool holds less than was written")
        self._pos += got
        return got

    def __len__(self) -> int:
        return self._len


class MultipartStager:
    """What ``store.staging`` asks of an S3 backend: a stage per upload, and the cleanup of abandoned ones."""

    def __init__(self, s3: S3Storage) -> None:
        self.s3 = s3

    def stage(self, key: str, spool_dir: Path) -> MultipartStage:
        """Stage ``key``: bytes written are spooled locally and teed to a multipart upload, visible on commit."""
        check_key(key)
        return MultipartStage(self.s3, key, spool_dir)

    def abort_stale(self, prefix: str, before: datetime, *, dry_run: bool = False) -> list[str]:
        """Abort the multipart uploads under ``prefix`` started before ``before`` (a worker killed mid-upload leaves
        its parts stored and billed, invisible to LIST); the keys they were for (``dry_run``: only listed)."""
        check_prefix(prefix)
        s3 = self.s3
        full = f"{s3.prefix}/{prefix}" if s3.prefix else prefix
        found: list[str] = []
        with s3._errors(prefix or "(all)"):
            pages = s3.client.get_paginator("list_multipart_uploads").paginate(Bucket=s3.bucket, Prefix=full)
            for page in pages:
                for up in page.get("Uploads", []):
                    started: Any = up.get("Initiated")
                    if started is None or started >= before:
                        continue  # maybe still arriving
                    found.append(s3._rel(up["Key"]))
                    if not dry_run:
                        s3.client.abort_multipart_upload(Bucket=s3.bucket, Key=up["Key"], UploadId=up["UploadId"])
        return found
