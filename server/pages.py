"""What a scientist's browser sees: the landing page, the zip download, the hub launch redirects."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as WerkzeugResponse

from nbpack.bundle.inspect import human_size
from nbpack.bundle.preview import CSP, csp_with_form_targets, notebook_html
from nbpack.errors import Forbidden
from nbpack.service.local import local_launch_url, local_server

from .http import base_url, service, stream

bp = Blueprint("pages", __name__)

# The landing page's one script: its copy buttons. Allowed by its hash in the page's CSP (no other script runs there:
# the notebook preview is sanitised of scripts, and the CSP forbids every script whose hash differs).
COPY_SCRIPT = """
for (const b of document.querySelectorAll("button.copy")) {
  b.addEventListener("click", () => {
    const text = document.getElementById(b.dataset.copy).textContent;
    const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, () => {}); }
  });
}
"""
_COPY_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(COPY_SCRIPT.encode()).digest()).decode() + "'"


def _token() -> str | None:
    return request.args.get("t")


def _secure(resp: Response, csp: str = CSP) -> Response:
    resp.headers["Content-Security-Policy"] = csp
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/")
def home() -> Response:
    """What this service is: a short page for a browser, a small JSON document for a program."""
    from nbpack import __version__

    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
        return jsonify({"service": "nbpack", "version": __version__, "api": "/api/v1", "health": "/healthz"})
    html = render_template("home.html", version=__version__, local=service().config.local_mode)
    resp = _secure(Response(html, mimetype="text/html"))
    resp.headers["Vary"] = "Accept"
    return resp


@bp.get("/b/<bid>")
def landing(bid: str) -> Response:
    svc = service()
    token = _token()
    state = svc.check_read(bid, token)
    manifest = svc.manifest(bid)
    base = base_url()
    ranking = svc.ranking(bid) if svc.hubs else []
    local = svc.config.local_mode
    here = local and local_server(svc) is not None
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
        handle=state,
        here=svc.url(base, "local", bid, token) if here else None,
        local=local,
        # Local mode: the returns arrived for this handle (on a shared service they are for the API key's holder).
        returns=list(reversed(svc.list_returns(bid))) if local else None,
        hubs_heading=_hubs_heading(ranking),
        copy_script=COPY_SCRIPT,
    )
    # The named-server form goes through this service's launch redirect to the hub.
    forms = sorted({_origin(r["hub"]["url"]) for r in ranking if r["hub"]["named_servers"]})
    csp = csp_with_form_targets(forms).replace("default-src 'none';", f"default-src 'none'; script-src {_COPY_HASH};")
    return _secure(Response(html, mimetype="text/html"), csp)


def _hubs_heading(ranking: list[dict]) -> str:
    # True to what is listed: a BinderHub builds an image per repository; it is not a JupyterHub one logs in to.
    kinds = {"BinderHubs" if r["hub"]["launch"] == "binderhub" else "JupyterHubs" for r in ranking}
    return " and ".join(sorted(kinds, reverse=True)) + " that can run it"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/b/<bid>/local")
def launch_here(bid: str) -> WerkzeugResponse:
    """Local mode: into the Jupyter server on this computer, logged in by its token (loopback clients only)."""
    svc = service()
    state = svc.check_read(bid, _token())
    if not _loopback(request.remote_addr):
        raise Forbidden("JupyterLab on this computer opens only from this computer", code="not_loopback")
    resp = redirect(local_launch_url(svc, state, base_url()), 302)
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


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
