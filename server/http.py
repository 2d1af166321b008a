"""Small HTTP helpers shared by the blueprints: the service, base URL, credentials, streamed downloads."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_range_header

from nbpack.errors import InvalidInput, TooLarge
from nbpack.service.core import Service
from nbpack.store.disposition import content_disposition

_ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


def body_cap() -> tuple[int, str]:
    """How many body bytes this request may send, and what kind of body that limit is for."""
    cfg = service().config
    kind = (request.mimetype or "").lower()
    if request.endpoint == "api.upload_return":
        return cfg.return_limits.max_total, "a return zip"
    if request.endpoint == "api.create_bundle" and kind in _ZIP_TYPES:
        return cfg.max_bundle_bytes, "a bundle zip"
    if kind == "multipart/form-data":
        return cfg.max_form_bytes, "a multipart create request"
    return cfg.max_json_bytes, "a request body"


def init_body_caps(app: Flask) -> None:
    """Refuse a body over its route's cap by its Content-Length before any of it is read (413 JSON); a chunked body
    is refused once more than the cap has arrived."""

    @app.before_request
    def _cap() -> None:
        limit, what = body_cap()
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge(f"{what} of {request.content_length} bytes is larger than the limit of {limit} bytes")
        env = request.environ
        if limit <= service().config.max_json_bytes and "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
            # werkzeug cuts a chunked body off at the limit without saying so; a small one is spooled here instead
            # (to disk past 256 KiB: never held whole in memory).
            spooled = tempfile.SpooledTemporaryFile(256 << 10, dir=str(service().ctx.tmp_dir()))  # noqa: SIM115 - the request owns it
            total = 0
            while total <= limit and (chunk := env["wsgi.input"].read(min(1 << 20, limit + 1 - total))):
                total += len(chunk)  # a server may hand a chunked body over one chunk per read
                spooled.write(chunk)
            if total > limit:
                spooled.close()
                raise TooLarge(f"{what} is larger than the limit of {limit} bytes")
            spooled.seek(0)
            env["wsgi.input"], env["CONTENT_LENGTH"] = spooled, str(total)
            env.pop("HTTP_TRANSFER_ENCODING")
            env.pop("wsgi.input_terminated", None)
            g.spooled_body = spooled

    @app.teardown_request
    def _drop_spool(exc: BaseException | None) -> None:
        spooled = g.pop("spooled_body", None)
        if spooled is not None:
            spooled.close()

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        resp = jsonify(
            TooLarge(f"the request body is larger than the limit of {request.max_content_length} bytes").to_json()
        )
        resp.status_code = 413
        return resp


def service() -> Service:
    """The app's one Service."""
    return current_app.extensions["nbpack"]


def base_url() -> str:
    """The public base URL links are built on: configured, else the one the request came to."""
    return service().config.public_url or request.host_url.rstrip("/")


def bearer_token() -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def api_key() -> str | None:
    """The API key a request carries (``X-API-Key`` or ``Authorization: Bearer``)."""
    return request.headers.get("X-API-Key") or bearer_token()


def require_api_key() -> str:
    """The tenant of the request's API key (checked once per request); 401 unless it carries a valid one."""
    if "tenant" not in g:
        g.tenant = service().access.check_api_key(api_key())
    return str(g.tenant)


def return_token() -> str | None:
    """The return token a results-cell upload carries: a present ``Authorization: Bearer`` header wins, even empty
    (then 403 token_missing), over ``?t=``."""
    token = bearer_token()
    return token if token is not None else request.args.get("t")


def int_arg(name: str) -> int | None:
    """An optional whole-number query argument, 400 when malformed."""
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a whole number of seconds")
    return int(value)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a ``Range`` header asks of ``size`` bytes; None to send the whole body (no header,
    a malformed one, another unit or several ranges: RFC 9110 lets a server ignore those); ``(size, size)`` when the
    one range starts past the end (416). werkzeug parses the header, so a number too long for ``int()`` is malformed
    rather than an error."""
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1 or size <= 0:
        return None
    start, stop = parsed.ranges[0]
    if start < 0:  # a suffix longer than the body means the whole body (RFC 9110 14.1.2)
        start = max(size + start, 0)
    if start >= size:
        return size, size
    return start, min(stop if stop is not None else size, size) - 1


def stream(
    size: int, chunks: Callable[[int, int | None], Iterator[bytes]], filename: str, mimetype: str = "application/zip"
) -> Response:
    """A streamed download with Content-Length and single-range support (resumable)."""
    start, end, status = 0, size - 1, 200
    wanted = byte_range(request.headers.get("Range"), size)
    if wanted is not None:
        start, end = wanted
        if start >= size:
            resp = Response(status=416)
            resp.headers["Content-Range"] = f"bytes */{size}"
            return resp
        status = 206
    resp = Response(
        chunks(start, end) if size else iter([b""]), status=status, mimetype=mimetype, direct_passthrough=True
    )
    resp.headers["Content-Length"] = str(end - start + 1 if size else 0)
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["Content-Disposition"] = content_disposition(filename)
    if status == 206:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return resp
