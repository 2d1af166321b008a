"""The errors the client raises, and the base of every error nbpack raises (``nbpack.errors`` builds on it).

Each carries ``code`` and ``http_status`` and reads as one line a person can act on.
"""

from __future__ import annotations

__all__ = ["NbpackError", "InvalidInput", "UpstreamError", "ServiceError"]


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


class UpstreamError(NbpackError):
    code = "upstream_error"
    http_status = 502


class ServiceError(NbpackError):
    """The service answered with an error; ``code``/``message`` are its JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})", code=code)
        self.http_status = status
