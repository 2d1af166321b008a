"""What a failure of S3 becomes: botocore and s3transfer errors translated into NbpackErrors (404s into NotFound,
the rest into StorageError) whose messages name the bucket and endpoint but never a secret; and a GET body whose
network failures surface the same way while it streams.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from nbpack.errors import NotFound, StorageError

__all__ = ["S3Body", "translated"]


@contextlib.contextmanager
def translated(what: str, bucket: str, where: str) -> Iterator[None]:
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
            raise StorageError(f"S3 bucket {bucket} does not exist at {where}") from e
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            raise NotFound(f"no stored object {what}") from e
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
            raise StorageError(f"S3 at {where} refused access to bucket {bucket} ({code}): check credentials") from e
        raise StorageError(f"S3 error {code or status} on {what} at {where}") from e
    except (NoCredentialsError, PartialCredentialsError) as e:
        raise StorageError("no S3 credentials configured (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from e
    except (ConnectionError, HTTPClientError) as e:
        raise StorageError(f"S3 endpoint {where} unreachable ({type(e).__name__})") from e
    except IncompleteReadError as e:
        raise StorageError(f"S3 read of {what} from {where} was cut short") from e
    except BotoCoreError as e:
        raise StorageError(f"S3 client failure on {what} ({type(e).__name__})") from e
    except (S3UploadFailedError, S3TransferFailedError) as e:
        raise StorageError(f"S3 transfer of {what} to {where} failed") from e


class S3Body(io.RawIOBase):
    """A GET body as a raw stream whose network failures surface as StorageError."""

    def __init__(self, body: Any, errors: Callable[[str], AbstractContextManager[None]], key: str) -> None:
        self._body, self._errors, self._key = body, errors, key

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        with self._errors(self._key):
            data = self._body.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()
