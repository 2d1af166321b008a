"""What a scientist's browser sees: the landing page, the zip download, the hub launch redirects."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request
from werkzeug.wrappers import Response as WerkzeugResponse

from nbpack.inspect import human_size
from nbpack.preview import CSP, notebook_html

from .http import base_url, service, stream

bp = Blueprint("pages", __name__)


def _token() -> str | None:
    return request.args.get("t")


def _secure(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/b/<bid>")
def landing(bid: str) -> Response:
    svc = service()
    token = _token()
    state = svc.check_read(bid, token)
    manifest = svc.manifest(bid)
    base = base_url()
    # The template wants flat rows; ranking entries nest the hub (``{"hub": {...}, "can_run", "reasons"}``).
    hubs = [
        {
            "name": r["hub"]["name"],
            "can_run": r["can_run"],
            "reasons": r["reasons"],
            "launch": svc.url(base, "launch", bid, token, hub=r["hub"]["name"]),
        }
        for r in (svc.ranking(bid) if svc.hubs else [])
    ]
    html = render_template(
        "landing.html",
        m=manifest,
        preview=notebook_html(svc.notebook(bid)),
        hubs=hubs,
        human_size=human_size,
        download=svc.url(base, "download", bid, token),
        git=svc.git_url(state, base),
        total_bytes=sum(f.get("size", 0) for f in manifest["files"]),
    )
    return _secure(Response(html, mimetype="text/html"))


@bp.get("/b/<bid>/download")
def download(bid: str) -> Response:
    svc = service()
    state = svc.check_read(bid, _token())
    # No presigned redirect: a handle's zip exists only as parts, assembled here (see design.md).
    return stream(svc.bundle_size(bid, state=state), lambda s, e: svc.bundle_chunks(state, s, e), f"{bid}.zip")


@bp.get("/b/<bid>/launch/<path:hub>")
def launch(bid: str, hub: str) -> WerkzeugResponse:
    svc = service()
    state = svc.check_read(bid, _token())
    return redirect(svc.launch_url(bid, hub, state, base_url()), 302)
