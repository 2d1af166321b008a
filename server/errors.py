"""Errors: a JSON body for programs, a small page for people.

Every 4xx/5xx is ``{"error": code, "message": text}``, except on the routes a browser opens (``/``, the landing page
and what it links to, the notebook link) when the request prefers HTML: then a page says what happened and what to
do (an expired link: ask for a new one). ``Accept: application/json`` always gets JSON.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from nbpack.bundle.preview import CSP
from nbpack.errors import NbpackError

__all__ = ["init_app", "wants_html", "BROWSER_PREFIXES"]

log = logging.getLogger("nbpack.server")

# Paths people open in a browser (from ESAP, a chat, an old e-mail); the API and git routes are for programs.
BROWSER_PREFIXES = ("/b/", "/nb/")

_LINK = "Ask ESAP (or whoever sent you this link) for a new one."
# Per error code: the page's heading and what the reader can do about it.
_PAGES: dict[str, tuple[str, str]] = {
    "token_expired": ("This link has expired", _LINK),
    "token_revoked": ("This link was revoked", "The bundle was deleted or its links were withdrawn. " + _LINK),
    "token_missing": ("This link is incomplete", "Copy the whole link, including the part after '?t='. " + _LINK),
    "token_invalid": ("This link is not valid", "It may have been cut short when copied. " + _LINK),
    "token_scope": ("This link is for something else", _LINK),
    "token_bundle": ("This link is for another bundle", _LINK),
    "not_found": ("Not found", "Check the address, or open the link you were given for a bundle."),
    "unknown_hub": ("Unknown hub", "Go back to the bundle's page and pick one of the hubs listed there."),
    "internal_error": ("Something went wrong", "The error was logged; try again in a minute."),
    "storage_unavailable": ("The service cannot reach its storage", "Try again in a minute."),
}


def wants_html() -> bool:
    """True for a browser route asked for by a browser (it prefers text/html to JSON)."""
    path = request.path
    if path != "/" and not path.startswith(BROWSER_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


def _page(code: str, message: str, status: int) -> Response:
    heading, advice = _PAGES.get(code, ("The request could not be served", ""))
    if status >= 500 and code not in _PAGES:
        heading, advice = _PAGES["internal_error"]
    html = render_template("error.html", heading=heading, message=message, advice=advice, code=code, status=status)
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["Vary"] = "Accept"
    return resp


def answer(code: str, message: str, status: int) -> Response:
    """The error answer this request gets: a page for a browser on a browser route, JSON otherwise."""
    if wants_html():
        return _page(code, message, status)
    resp = jsonify({"error": code, "message": message})
    resp.status_code = status
    if request.path == "/" or request.path.startswith(BROWSER_PREFIXES):
        resp.headers["Vary"] = "Accept"
    return resp


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a JSON body or a page."""

    @app.errorhandler(NbpackError)
    def nbpack_error(exc: NbpackError) -> Response:
        return answer(exc.code, exc.message, exc.http_status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return answer(code, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return answer("internal_error", "the service failed unexpectedly; the error was logged", 500)
