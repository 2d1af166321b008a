"""What a scientist's browser sees: the landing page, the zip download, the hub launch redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request
from werkzeug.wrappers import Response as WerkzeugResponse

from nbpack.bundle.inspect import human_size
from nbpack.bundle.preview import CSP, csp_with_form_targets, notebook_html

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
    state = svc.check_read(bid, token)
    manifest = svc.manifest(bid)
    base = base_url()
    ranking = svc.ranking(bid) if svc.hubs else []
    # The template wants flat rows; ranking entries nest the hub (``{"hub": {...}, "can_run", "reasons"}``).
    hubs = [
        {
            "name": r["hub"]["name"],
            "can_run": r["can_run"],
            "reasons": r["reasons"],
            "launch": svc.url(base, "launch", bid, token, hub=r["hub"]["name"]),
            "profile": r.get("profile"),
            "named_servers": r["hub"]["named_servers"],
        }
        for r in ranking
    ]
    html = render_template(
        "landing.html",
        m=manifest,
        preview=notebook_html(svc.notebook(bid)),
        hubs=hubs,
        human_size=human_size,
        download=svc.url(base, "download", bid, token),
        token=token,
        notebook=svc.notebook_url(state, base),
        git=svc.git_url(state, base),
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
    state = svc.check_read(bid, _token())
    # No presigned redirect: a handle's zip exists only as parts, assembled here (see design.md).
    return stream(svc.bundle_size(bid, state=state), lambda s, e: svc.bundle_chunks(state, s, e), f"{bid}.zip")


@bp.get("/b/<bid>/launch/<path:hub>")
def launch(bid: str, hub: str) -> WerkzeugResponse:
    svc = service()
    state = svc.check_read(bid, _token())
    # ``user``: the hub user name, which a named server's spawn URL holds (the landing page asks for it).
    return redirect(svc.launch_url(bid, hub, state, base_url(), request.args.get("user", "")), 302)
