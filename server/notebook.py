"""``/nb/<git token>/<handle id>/<notebook name>``: the handle's notebook alone (``links.notebook``).

The token is the handle's git capability (whoever may clone may read every member). It sits in the path, and the
path ends in the notebook's name, because browsers and jupyterlab-open-url-parameter name the fetched file after the
URL path's last segment.
"""

from __future__ import annotations

from flask import Blueprint, Response

from nbpack.errors import NotFound
from nbpack.store.disposition import content_disposition

from .guard import checked_handle
from .http import base_url, service

bp = Blueprint("notebook", __name__)


@bp.get("/nb/<token>/<bid>/<path:path>")
def lone_notebook(token: str, bid: str, path: str) -> Response:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, token, "git")
    manifest = svc.handles.manifest(handle)
    files_url = svc.access.files_url(handle, base_url())
    notebook, data = svc.members.served_notebook(manifest, svc.handles.notebook(handle), files_url)
    if path != notebook:
        raise NotFound(f"this bundle's notebook is {notebook!r}, not {path!r}")
    resp = Response(data, mimetype="application/x-ipynb+json")
    resp.headers["Content-Disposition"] = content_disposition(notebook.rsplit("/", 1)[-1])
    # JupyterLab's "open from URL" (and the fromURL extension) fetch it from the hub's page: a cross-origin read. The
    # capability is the URL itself, never a cookie, so any origin may read what the URL's holder asks for.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
