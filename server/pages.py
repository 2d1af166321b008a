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
from nbpack.service.answers import public_manifest
from nbpack.service.capabilities import url
from nbpack.service.local import lab_ready, local_launch_url, local_server

from .guard import checked_handle
from .http import base_url, service, stream

bp = Blueprint("pages", __name__)

# The landing page's one script: its copy buttons, in the page's head (the body holds no script at all). Allowed by its
# hash in the page's CSP: the notebook preview is sanitised of scripts, and the CSP refuses every script whose hash
# differs.
COPY_SCRIPT = """
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", () => {
      const text = document.getElementById(b.dataset.copy).textContent;
      const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = "Copy"; }, 2000); };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, () => {}); }
    });
  }
});
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
    handle = checked_handle() or svc.access.check(bid, token, "read")
    manifest = svc.handles.manifest(handle)
    base = base_url()
    ranking = svc.launch.ranking(manifest) if svc.hubs else []
    direct = svc.launch.direct_urls(handle, manifest, base) if ranking else {}
    modes = svc.launch.modes(manifest) if ranking else {}
    if any(r["can_run"] and "nbgitpuller" in modes[r["hub"]["name"]] for r in ranking):
        # A hub that clones (as its default or second link) may be clicked next: its repository is built while the
        # user reads this page.
        svc.members.prepare_git_repo(handle, svc.access.files_url(handle, base))
    local = svc.config.local_mode
    here = local and local_server(svc.config) is not None
    # The template wants flat rows; ranking entries nest the hub (``{"hub": {...}, "can_run", "reasons"}``).
    hubs = [
        {
            "name": r["hub"]["name"],
            "can_run": r["can_run"],
            "reasons": r["reasons"],
            # The named-server form needs the user's name, so it goes through the launch route; the button does not.
            "launch": url(base, "launch", bid, token, hub=r["hub"]["name"]),
            "open": next(iter(direct.get(r["hub"]["name"], {}).values()), None)
            or url(base, "launch", bid, token, hub=r["hub"]["name"]),
            # The hub's other way to open it (nbgitpuller beside the notebook alone, or the reverse): a second link.
            "others": [
                {"mode": mode, "href": href, "label": _MODE_LABELS.get(mode, mode)}
                for mode, href in list(direct.get(r["hub"]["name"], {}).items())[1:]
            ],
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
        handle=handle,
        here=url(base, "local", bid, token) if here else None,
        local=local,
        # Local mode: the returns arrived for this handle (on a shared service they are for the API key's holder).
        returns=list(reversed(svc.returns.list(handle))) if local else None,
        hubs_heading=_hubs_heading(ranking),
        copy_script=COPY_SCRIPT,
    )
    # The named-server form goes through this service's launch redirect to the hub.
    forms = sorted({_origin(r["hub"]["url"]) for r in ranking if r["hub"]["named_servers"]})
    csp = csp_with_form_targets(forms).replace("default-src 'none';", f"default-src 'none'; script-src {_COPY_HASH};")
    return _secure(Response(html, mimetype="text/html"), csp)


# The second link's words: what the other way brings, so a user knows when to take it.
_MODE_LABELS = {
    "nbgitpuller": "or pull the whole bundle folder (nbgitpuller: reopening keeps your edits)",
    "fromurl": "or open the notebook alone (faster; it fetches the rest of the bundle itself)",
}


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
    handle = checked_handle() or svc.access.check(bid, _token(), "read")
    if not _loopback(request.remote_addr):
        raise Forbidden("JupyterLab on this computer opens only from this computer", code="not_loopback")
    manifest = svc.handles.manifest(handle)
    git_url = svc.access.git_url(handle, base_url())
    target = local_launch_url(svc.config, handle, manifest, git_url)
    if not lab_ready(svc.config):
        # A click in the seconds JupyterLab takes to start after `nbpack serve`: a page that tries again.
        page = _secure(Response(render_template("starting.html"), status=503, mimetype="text/html"))
        page.headers["Retry-After"] = "2"
        return page
    resp = redirect(target, 302)
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


@bp.get("/b/<bid>/download")
def download(bid: str) -> WerkzeugResponse:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, _token(), "read")
    # A big zip on S3: a redirect to its whole-zip object (the store serves the bytes, Range included); else the
    # zip is assembled here from its parts (see design.md).
    whole = svc.members.zip_url(handle, f"{bid}.zip")
    if whole is None:
        return stream(handle.size, lambda s, e: svc.members.zip_chunks(handle, s, e), f"{bid}.zip")
    resp = redirect(whole, 302)
    # The download page's URL holds the token: it must not follow the browser to the store as a Referer.
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/b/<bid>/launch/<path:hub>")
def launch(bid: str, hub: str) -> WerkzeugResponse:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, _token(), "read")
    manifest = svc.handles.manifest(handle)
    # ``user``: the hub user name, which a named server's spawn URL holds (the landing page asks for it); ``via``:
    # one of the hub's other ways to open it (400 if it has no such way), else its default.
    args = request.args
    return redirect(svc.launch.url(handle, manifest, hub, base_url(), args.get("user", ""), args.get("via", "")), 302)
