"""nbpack/store/s3_errors.py: what each botocore/s3transfer failure becomes (404 → NotFound, the rest StorageError),
with messages naming bucket and endpoint but never a credential; and a GET body failing mid-stream the same way.
The exceptions are botocore's own classes, raised as botocore raises them."""

from __future__ import annotations

import io
from functools import partial

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)

from nbpack.errors import NbpackError, NotFound, StorageError
from nbpack.store.s3_errors import S3Body, translated

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHERE = "http://seaweed:8333"


def _client_error(code: str, status: int) -> ClientError:
    message = f"The request signature we calculated does not match (key {SECRET})"
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


def _raised(exc: BaseException) -> NbpackError:
    with pytest.raises(NbpackError) as caught, translated("handles/h-1/handle.json", "nbpack", WHERE):
        raise exc
    assert SECRET not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (_client_error("NoSuchKey", 404), NotFound, "no stored object handles/h-1/handle.json"),
        (_client_error("", 404), NotFound, "no stored object"),  # a HEAD's 404 has no code
        (_client_error("NoSuchBucket", 404), StorageError, f"S3 bucket nbpack does not exist at {WHERE}"),
        (_client_error("SignatureDoesNotMatch", 403), StorageError, "refused access to bucket nbpack"),
        (_client_error("SlowDown", 503), StorageError, f"S3 error SlowDown on handles/h-1/handle.json at {WHERE}"),
        (_client_error("", 500), StorageError, "S3 error 500"),
        (NoCredentialsError(), StorageError, "no S3 credentials configured"),
        (EndpointConnectionError(endpoint_url=WHERE), StorageError, f"S3 endpoint {WHERE} unreachable"),
        (IncompleteReadError(actual_bytes=1, expected_bytes=2), StorageError, "was cut short"),
        (ReadTimeoutError(endpoint_url=WHERE), StorageError, "unreachable (ReadTimeoutError)"),
        (S3UploadFailedError(f"Failed: {SECRET}"), StorageError, "S3 transfer of handles/h-1/handle.json"),
    ],
)
def test_each_failure_becomes_a_clear_error_without_secrets(
    error: BaseException, kind: type[NbpackError], message: str
) -> None:
    translated_error = _raised(error)
    assert type(translated_error) is kind and message in str(translated_error)
    assert translated_error.__cause__ is error  # the original kept for the log


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), translated("k", "b", WHERE):
        raise KeyError("not botocore's")


class _FlakyBody:
    """A GET body whose network dies after ``good`` bytes, as urllib3 raises through botocore."""

    def __init__(self, data: bytes, good: int) -> None:
        self.data, self.good, self.pos, self.closed = data, good, 0, False

    def read(self, n: int) -> bytes:
        if self.pos >= self.good:
            raise ReadTimeoutError(endpoint_url=WHERE)
        chunk = self.data[self.pos : min(self.pos + n, self.good)]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True
        raise OSError("closing a dead socket")


def test_a_body_streams_and_fails_mid_way_as_storage_error() -> None:
    data = bytes(range(256)) * 64
    raw = _FlakyBody(data, good=5000)
    body = io.BufferedReader(S3Body(raw, partial(translated, bucket="b", where=WHERE), "content/x"), 1024)
    assert body.read(4000) == data[:4000]
    with pytest.raises(StorageError, match=f"S3 endpoint {WHERE} unreachable"):
        body.read()
    body.close()  # the body's own close failing is not the reader's problem
    assert raw.closed


def test_a_whole_body_reads_to_the_end() -> None:
    data = "é, ü\x00".encode() * 1000
    body = S3Body(_FlakyBody(data, good=len(data) + 1), partial(translated, bucket="b", where=WHERE), "k")
    assert io.BufferedReader(body).read() == data
