"""What a scientist's browser sees: the landing page, the zip download, the hub launch redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request
from werkzeug.wrappers import Response as WerkzeugResponse

from nbpack.bundle.inspect import human_size
from nbpack.bundle.preview import CSP, csp_with_form_targets, notebook_html
from nbpack.service.answers import public_manifest
from nbpack.service.capabilities import url

from .guard import checked_handle
from .http import base_url, service, stream

bp = Blueprint("pages", __name__)


def _token() -> str | None:
    return request.args.get("t")


def _secure(resp: Response, csp: str = CSP) -> Response:
    resp.headers["Content-Security-Policy"] = csp
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/b/<bid>")
def landing(bid: str) -> Response:
    svc = service()
    token = _token()
    handle = checked_handle() or svc.access.check(bid, token, "read")
    manifest = svc.handles.manifest(handle)
    base = base_url()
    ranking = svc.launch.ranking(manifest) if svc.hubs else []
    # The template wants flat rows; ranking entries nest the hub (``{"hub": {...}, "can_run", "reasons"}``).
    hubs = [
        {
            "name": r["hub"]["name"],
            "can_run": r["can_run"],
            "reasons": r["reasons"],
            "launch": url(base, "launch", bid, token, hub=r["hub"]["name"]),
            "profile": r.get("profile"),
            "named_servers": r["hub"]["named_servers"],
        }
        for r in ranking
    ]
    html = render_template(
        "landing.html",
        m=public_manifest(manifest),
        preview=notebook_html(svc.handles.notebook(handle)),
        hubs=hubs,
        human_size=human_size,
        download=url(base, "download", bid, token),
        token=token,
        notebook=svc.access.notebook_url(handle, base, manifest["payload"]["notebook"]),
        git=svc.access.git_url(handle, base),
        total_bytes=sum(f.get("size", 0) for f in manifest["files"]),
    )
    # The named-server form goes through this service's launch redirect to the hub.
    forms = sorted({_origin(r["hub"]["url"]) for r in ranking if r["hub"]["named_servers"]})
    return _secure(Response(html, mimetype="text/html"), csp_with_form_targets(forms))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/b/<bid>/download")
def download(bid: str) -> Response:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, _token(), "read")
    # No presigned redirect: a handle's zip exists only as parts, assembled here (see design.md).
    return stream(handle.size, lambda s, e: svc.members.zip_chunks(handle, s, e), f"{bid}.zip")


@bp.get("/b/<bid>/launch/<path:hub>")
def launch(bid: str, hub: str) -> WerkzeugResponse:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, _token(), "read")
    manifest = svc.handles.manifest(handle)
    # ``user``: the hub user name, which a named server's spawn URL holds (the landing page asks for it).
    return redirect(svc.launch.url(handle, manifest, hub, base_url(), request.args.get("user", "")), 302)
