"""Capabilities at the door: a request's credential is checked before any byte of its body is read, and a response
to a URL that holds a credential is never cached.

A refused request's body stays unread: gunicorn drains at most 64 KiB of it and closes the connection, so a client
streaming a large body without a valid credential costs the worker neither memory nor time.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from nbpack.service.handle import Handle

from .http import api_key, return_token, service

# Endpoints whose credential is the handle's return token (the results cell's uploads).
_RETURN_ROUTES = ("api.upload_return", "api.return_blob")
# Endpoints whose credential is the handle's git token, in the path.
_GIT_ROUTES = ("git.smart_http", "git.member", "notebook.lone_notebook")
_OPEN_ROUTES = ("api.healthz", "api.health")
# URL paths that carry a token: whatever they answer is the capability's, and dies with it.
_TOKEN_PATHS = ("/files/", "/nb/", "/git/", "/b/")


def has_body() -> bool:
    """True when the request announces a body (a length above 0, or chunked)."""
    return bool(request.content_length) or "HTTP_TRANSFER_ENCODING" in request.environ


def check_credential() -> None:
    """Check the credential the request's route needs (401/403/404 as the route would), keeping what it proves on
    ``g`` (``g.tenant``, ``g.handle``: the request's one read of the handle) so the view does not check twice."""
    endpoint, args = request.endpoint or "", request.view_args or {}
    access = service().access
    if endpoint in _RETURN_ROUTES:
        # The blob route answers a presigned PUT URL that outlives the request: its handle is read fresh.
        g.handle = access.check(args["bid"], return_token(), "return", fresh=endpoint == "api.return_blob")
    elif endpoint in _GIT_ROUTES:
        g.handle = access.check(args["bid"], args["token"], "git")
    elif endpoint.startswith("pages."):
        g.handle = access.check(args["bid"], request.args.get("t"), "read")
    elif endpoint.startswith("api.") and endpoint not in _OPEN_ROUTES:
        g.tenant = access.check_api_key(api_key())


def checked_handle() -> Handle | None:
    """The handle the door already proved (and read) for this request, if it checked one."""
    return g.get("handle")


def init_app(app: Flask) -> None:
    """Register the door (before the body caps, which may read a small chunked body) and the cache policy."""

    @app.before_request
    def _credential_first() -> None:
        # A request without a body costs nothing unread: its view checks its credential as it always does.
        if has_body():
            check_credential()

    @app.after_request
    def _no_store(resp: Response) -> Response:
        if request.path.startswith(_TOKEN_PATHS) or "t" in request.args:
            # A browser must not keep a member, a notebook or a download after its handle is deleted or revoked.
            resp.headers["Cache-Control"] = "private, no-store"
        return resp
