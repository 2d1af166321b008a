"""One S3 object made of byte ranges of others, inside the store: a multipart upload whose big parts are
``UploadPartCopy`` ranges, so no byte of a big source passes through this process.

S3 wants every part but the last to be at least 5 MiB. Sources too small to copy are read and sent as the
uploaded bytes of a part, topped up with the first bytes of the next big source; the rest of that source is copied
by range; what is left at the end (a zip's central directory) is the last, small, uploaded part. At most
``FLUSH`` + one read chunk (1 MiB) are held at once, twice while a part is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["FLUSH", "MIN_PART", "MIN_COPY", "MAX_COPY", "compose"]

MIN_PART = 5 << 20  # S3's least size of a part that is not the last
# A source is copied by range when it has at least this many bytes: topping a pending part up to MIN_PART then
# still leaves a copied range of MIN_PART or more. Smaller sources are read (that costs their bytes once).
MIN_COPY = 16 << 20
# Read bytes are sent as a part once this many are pending (a worker's memory, and many small records).
FLUSH = 8 << 20
# S3 copies at most 5 GiB per part; smaller ranges also let a failed part be retried cheaply.
MAX_COPY = 1 << 30


def compose(
    client: Any,
    bucket: str,
    full_key: str,
    sources: Sequence[tuple[str, int]],
    full: Callable[[str], str],
    read: Callable[[str, int, int], Iterator[bytes]],
    errors: Callable[[str], AbstractContextManager[None]],
) -> None:
    """Write ``full_key`` as the concatenation of ``sources`` ([key, size]); ``full(key)`` is a source's key in the
    bucket, ``read(key, s, e)`` its bytes ``s..e``; ``errors(what)`` translates S3 failures."""
    with errors(full_key):
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=full_key)["UploadId"]
    etags: list[dict[str, Any]] = []
    pending = bytearray()

    def send(data: bytes | bytearray) -> None:
        n = len(etags) + 1
        with errors(full_key):
            r = client.upload_part(Bucket=bucket, Key=full_key, UploadId=upload_id, PartNumber=n, Body=bytes(data))
        etags.append({"PartNumber": n, "ETag": r["ETag"]})

    def copy(src: str, start: int, end: int) -> None:
        n = len(etags) + 1
        with errors(src):
            r = client.upload_part_copy(
                Bucket=bucket,
                Key=full_key,
                UploadId=upload_id,
                PartNumber=n,
                CopySource={"Bucket": bucket, "Key": full(src)},
                CopySourceRange=f"bytes={start}-{end}",
            )
        etags.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})

    try:
        for src, size in sources:
            if size < MIN_COPY:
                for chunk in read(src, 0, size - 1) if size else ():
                    pending += chunk
                    if len(pending) >= FLUSH:
                        send(pending)
                        pending.clear()
                continue
            start = 0
            if pending:
                start = max(0, MIN_PART - len(pending))
                for chunk in read(src, 0, start - 1) if start else ():
                    pending += chunk
                send(pending)
                pending.clear()
            while start < size:
                # equal ranges, none above MAX_COPY, each >= MIN_PART (the source's rest is >= MIN_COPY - MIN_PART)
                count = -(-(size - start) // MAX_COPY)
                end = start + -(-(size - start) // count) - 1
                copy(src, start, min(end, size - 1))
                start = end + 1
        if pending or not etags:
            send(pending)
        with errors(full_key):
            client.complete_multipart_upload(
                Bucket=bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": etags}
            )
    except BaseException:
        # An unfinished upload's parts are billed until aborted; the object itself never appeared. A failed abort
        # must not hide why the upload failed (a bucket lifecycle rule sweeps what is left).
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=bucket, Key=full_key, UploadId=upload_id)
        raise
