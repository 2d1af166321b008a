"""The runtime's errors: one line each, naming the problem."""

from __future__ import annotations


class RuntimeProblem(Exception):
    """A failure the runtime explains in one line (missing manifest, refused URL, missing client...)."""


class ChecksumMismatch(RuntimeProblem):
    """A downloaded file does not match the checksum the manifest or Rucio recorded."""


class FetchError(RuntimeProblem):
    """A file could not be fetched from any of its locations (``status``: the HTTP status that refused it, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UploadError(RuntimeProblem):
    """The return bundle could not be uploaded (it is still on disk)."""
