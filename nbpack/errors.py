"""One error hierarchy: every failure a user can cause maps to a stable code and a safe message.

The CLI turns an ``NbpackError`` into one line and a non-zero exit; the service turns it into
``{"error": code, "message": text}`` with ``http_status``. Subclasses only set attributes.
"""

from __future__ import annotations

# The base class and the two errors the client raises live in the nbpack-client distribution (clients/python), so
# a client error is an NbpackError in nbpack too.
from nbpack_client.errors import InvalidInput, NbpackError, UpstreamError

__all__ = [
    "one_line",
    "NbpackError",
    "NoConditionalWrites",
    "InvalidInput",
    "InvalidBundle",
    "InvalidNotebook",
    "InvalidTable",
    "UnsafeArchive",
    "ChecksumMismatch",
    "NotFound",
    "Conflict",
    "Unauthorized",
    "Forbidden",
    "TooLarge",
    "StorageError",
    "UpstreamError",
]


class InvalidBundle(NbpackError):
    code = "invalid_bundle"


class InvalidNotebook(NbpackError):
    code = "invalid_notebook"


class InvalidTable(NbpackError):
    code = "invalid_table"


class UnsafeArchive(NbpackError):
    code = "unsafe_archive"


class ChecksumMismatch(NbpackError):
    code = "checksum_mismatch"


class NotFound(NbpackError):
    code = "not_found"
    http_status = 404


class Conflict(NbpackError):
    code = "conflict"
    http_status = 409


class Unauthorized(NbpackError):
    code = "unauthorized"
    http_status = 401


class Forbidden(NbpackError):
    code = "forbidden"
    http_status = 403


class TooLarge(NbpackError):
    code = "too_large"
    http_status = 413


class StorageError(NbpackError):
    code = "storage_unavailable"
    http_status = 503


class NoConditionalWrites(StorageError):
    """The store ignores If-Match / If-None-Match: no quota ledger (so no return) can be kept on it."""


def one_line(err: object) -> str:
    """An exception (or a value such as an Arrow type) as one short line for an error message: library errors and
    user-named fields can span lines or run long."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]
