"""What the git capability reads: ``/git/<git token>/<hid>.git/...`` (a read-only repository for nbgitpuller and
BinderHub) and ``/files/<git token>/<hid>/<path>`` (one member of the bundle, byte ranges of stored ones; with
``?signed=1``, a short-lived presigned URL of the stored object holding its data, see ``Members.signed_read``).

The token sits in the path because git appends ``/info/refs?service=…`` to the clone URL, and a runtime reading a
thin tree's catalogs joins member paths onto one prefix. It is a ``git`` token: no expiry of its own, valid while the
handle lives, since nbgitpuller re-pulls from the URL it first cloned.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from nbpack.hub import git_http
from nbpack.service.members import SIGNED_READ

from .guard import checked_handle
from .http import base_url, service, stream

bp = Blueprint("git", __name__)


@bp.route("/git/<token>/<bid>.git/<path:rest>", methods=["GET", "POST"])
def smart_http(token: str, bid: str, rest: str) -> Response | tuple[Response, int]:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, token, "git")
    refused = git_http.refusal(request.method, "/" + rest, request.query_string.decode("latin-1"))
    if refused:
        status, message = refused
        code = int(status.split()[0])
        return jsonify({"error": status.split(" ", 1)[1].lower().replace(" ", "_"), "message": message}), code
    repo = svc.members.git_repo(handle, svc.access.files_url(handle, base_url()))
    status, headers, body = git_http.http_backend(request.environ, repo, "/" + rest)
    resp = Response(body, status=int(status.split()[0]), direct_passthrough=True)
    for name, value in headers:
        if name.lower() == "content-type":
            resp.headers["Content-Type"] = value
        else:
            resp.headers[name] = value
    return resp


@bp.get("/files/<token>/<bid>/<path:path>")
def member(token: str, bid: str, path: str) -> Response:
    svc = service()
    if SIGNED_READ in request.args:
        # A signed range capability (docs/design.md "Signed range reads"): the handle is read afresh, never the
        # one remembered for a second, so a deleted or revoked handle gets no URL from the moment it is gone.
        return jsonify(svc.members.signed_read(svc.access.check(bid, token, "git", fresh=True), path))
    handle = checked_handle() or svc.access.check(bid, token, "git")
    found = svc.members.member(handle, path)
    name = path.rsplit("/", 1)[-1]
    kind = "application/json" if name.endswith((".json", ".ipynb")) else "application/octet-stream"
    if found.stored:
        resp = stream(found.size, lambda s, e: svc.members.member_chunks(found, s, e), name, kind)
    else:
        # A deflated member has no byte offsets to seek to: it is inflated as it streams, whole (Range ignored).
        resp = Response(svc.members.member_chunks(found), mimetype=kind, direct_passthrough=True)
        resp.headers["Content-Length"] = str(found.size)
        resp.headers["Accept-Ranges"] = "none"
    if found.sha256:
        resp.set_etag(found.sha256)
    return resp  # no-store (guard): the URL is a capability, and a deleted handle's bytes must not stay in a cache
