"""Small HTTP helpers shared by the blueprints: the service, base URL, credentials, streamed downloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from flask import Response, current_app, request

from nbpack.errors import InvalidInput
from nbpack.service import Service

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def service() -> Service:
    """The app's one Service."""
    return current_app.extensions["nbpack"]


def base_url() -> str:
    """The public base URL links are built on: configured, else the one the request came to."""
    return service().config.public_url or request.host_url.rstrip("/")


def api_key() -> str | None:
    """The API key a request carries (``X-API-Key`` or ``Authorization: Bearer``)."""
    key = request.headers.get("X-API-Key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def require_api_key() -> str:
    """The tenant of the request's API key; 401 unless it carries a valid one."""
    return service().check_api_key(api_key())


def int_arg(name: str) -> int | None:
    """An optional whole-number query argument, 400 when malformed."""
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a whole number of seconds")
    return int(value)


def stream(size: int, chunks: Callable[[int, int | None], Iterator[bytes]], filename: str,
           mimetype: str = "application/zip") -> Response:
    """A streamed download with Content-Length and single-range support (resumable)."""
    start, end, status = 0, size - 1, 200
    header = request.headers.get("Range")
    if header and size > 0:
        m = _RANGE.match(header.strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(size - int(m.group(2)), 0)
            if start > end or start >= size:
                resp = Response(status=416)
                resp.headers["Content-Range"] = f"bytes */{size}"
                return resp
            status = 206
    resp = Response(chunks(start, end) if size else iter([b""]), status=status, mimetype=mimetype,
                    direct_passthrough=True)
    resp.headers["Content-Length"] = str(end - start + 1 if size else 0)
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if status == 206:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return resp
