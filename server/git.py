"""``/git/<git token>/<handle id>.git/...``: a handle as a read-only repository for nbgitpuller and BinderHub.

The token sits in the path because git appends ``/info/refs?service=…`` to the clone URL. It is a ``git`` token:
no expiry of its own, valid while the handle lives, since nbgitpuller re-pulls from the URL it first cloned.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from nbpack import gitrepo

from .http import base_url, service

bp = Blueprint("git", __name__)


@bp.route("/git/<token>/<bid>.git/<path:rest>", methods=["GET", "POST"])
def smart_http(token: str, bid: str, rest: str) -> Response | tuple[Response, int]:
    svc = service()
    state = svc.check_git(bid, token)
    refused = gitrepo.refusal(request.method, "/" + rest, request.query_string.decode("latin-1"))
    if refused:
        status, message = refused
        code = int(status.split()[0])
        return jsonify({"error": status.split(" ", 1)[1].lower().replace(" ", "_"), "message": message}), code
    repo = svc.git_repo(state, base_url())
    status, headers, body = gitrepo.http_backend(request.environ, repo, "/" + rest)
    resp = Response(body, status=int(status.split()[0]), direct_passthrough=True)
    for name, value in headers:
        if name.lower() == "content-type":
            resp.headers["Content-Type"] = value
        else:
            resp.headers[name] = value
    return resp
