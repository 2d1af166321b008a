"""The one JSON error route: every 4xx/5xx is ``{"error": code, "message": text}``."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from nbpack.errors import NbpackError

log = logging.getLogger("nbpack.server")


def _json(code: str, message: str, status: int) -> Response:
    resp = jsonify({"error": code, "message": message})
    resp.status_code = status
    return resp


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a JSON body."""

    @app.errorhandler(NbpackError)
    def nbpack_error(exc: NbpackError) -> Response:
        return _json(exc.code, exc.message, exc.http_status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _json(code, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return _json("internal_error", "the service failed unexpectedly; the error was logged", 500)
