"""One error hierarchy: every failure a user can cause maps to a stable code and a safe message.

The CLI turns an ``NbpackError`` into one line and a non-zero exit; the service turns it into
``{"error": code, "message": text}`` with ``http_status``. Subclasses only set attributes.
"""

from __future__ import annotations

__all__ = [
    "one_line",
    "NbpackError",
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


class NbpackError(Exception):
    """Base of every error nbpack raises on purpose; ``str(err)`` is safe to show to a user."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, str]:
        """The JSON error body the service sends."""
        return {"error": self.code, "message": self.message}


class InvalidInput(NbpackError):
    code = "invalid_input"


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


class UpstreamError(NbpackError):
    code = "upstream_error"
    http_status = 502


def one_line(err: object) -> str:
    """An exception (or a value such as an Arrow type) as one short line for an error message: library errors and
    user-named fields can span lines or run long."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]
