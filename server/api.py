"""``/api/v1``: what ESAP's backend and the results cell call. Views parse, call the service, serialise."""

from __future__ import annotations

import json
import mimetypes
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from nbpack.bundle.preview import CSP, notebook_html
from nbpack.errors import InvalidInput, StorageError
from nbpack.service import idempotency
from nbpack.service.capabilities import url
from nbpack.service.create import spec_from_request
from nbpack.service.handles import CreateRequest
from nbpack.store.disposition import content_disposition

from . import observe
from .guard import checked_handle
from .http import base_url, int_arg, require_api_key, return_token, service, stream

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        service().ping()
    except StorageError as exc:
        return jsonify({"status": "unavailable", "storage": "unreachable", "message": exc.message}), 503
    return jsonify({"status": "ok", "storage": "reachable"}), 200


@bp.get("/api/v1/health")
def health() -> tuple[Response, int]:
    return healthz()


def _request_json(text: str | bytes | None) -> dict:
    if not text:
        raise InvalidInput("missing the JSON create request")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the create request is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the create request must be a JSON object")
    return doc


@bp.get("/api/v1/bundles")
def list_bundles() -> Response:
    tenant = require_api_key()
    limit = request.args.get("limit", "50")
    if not limit.isdigit():
        raise InvalidInput("limit must be a whole number")
    return jsonify(
        service().handles.list(
            tenant, request.args.get("owner") or None, int(limit), request.args.get("cursor") or None
        )
    )


def _spool_parts(folder: Path) -> dict[str, tuple[Path, str]]:
    """A multipart create's file parts spooled to disk (never memory): name -> (path, the client's file name)."""
    parts: dict[str, tuple[Path, str]] = {}
    for name, upload in request.files.items():
        filename = Path(upload.filename or name).name
        suffix = "".join(Path(filename).suffixes)[-20:]
        dest = folder / f"part-{len(parts)}{suffix}"
        with open(dest, "wb") as out:
            shutil.copyfileobj(upload.stream, out, 1 << 20)
        parts[name] = (dest, filename)
    return parts


def _once(tenant: str, what: list[bytes | str | Path], create: Callable[[], dict[str, Any]]) -> tuple[Response, int]:
    """Run a create, or answer a retry of one: with an ``Idempotency-Key`` the first answer is kept 24 h and a
    retry of the same request gets it again (same handle), whichever replica it reaches."""
    key = idempotency.check_key(request.headers.get("Idempotency-Key"))
    if key is None:
        answer, replayed = create(), False
    else:
        request_print = idempotency.fingerprint(request.mimetype or "", request.query_string, *what)
        answer, replayed = idempotency.remembered(service().storage, tenant, key, request_print, create)
    if not replayed:
        observe.count(current_app, "bundles_created")
    resp = jsonify(answer)
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp, 201


@bp.post("/api/v1/bundles")
def create_bundle() -> tuple[Response, int]:
    tenant = require_api_key()
    svc = service()
    idempotency.check_key(request.headers.get("Idempotency-Key"))  # a malformed key: 400 before the body is read
    ctype = (request.mimetype or "").lower()
    if ctype in ("application/zip", "application/x-zip-compressed", "application/octet-stream"):
        path = svc.ctx.receive(request.stream, svc.config.max_bundle_bytes)
        try:
            return _once(
                tenant,
                [path],
                lambda: svc.handles.store(
                    path,
                    CreateRequest(
                        base_url(),
                        expires_in=int_arg("expires_in"),
                        callback_url=request.args.get("callback_url"),
                        tenant=tenant,
                        owner=request.args.get("owner"),
                    ),
                ).to_json(),
            )
        finally:
            path.unlink(missing_ok=True)
    if ctype in ("multipart/form-data", "application/json"):
        multipart = ctype == "multipart/form-data"
        req = _request_json(request.form.get("request") if multipart else request.get_data(cache=False))
        with tempfile.TemporaryDirectory(prefix="nbpack-parts-", dir=svc.ctx.tmp_dir()) as tmp:
            parts = _spool_parts(Path(tmp)) if multipart else None
            what: list[bytes | str | Path] = [json.dumps(req, sort_keys=True)]
            for name, (path, filename) in sorted((parts or {}).items()):
                what += [name, filename, path]

            def create() -> dict[str, Any]:
                spec = spec_from_request(
                    req, parts, payloads=svc.payloads, cache_dir=svc.cache_dir, policy=svc.config.payload_policy
                )
                asked = CreateRequest(
                    base_url(),
                    expires_in=req.get("expires_in"),
                    callback_url=req.get("callback_url"),
                    tenant=tenant,
                    owner=req.get("owner"),
                )
                return svc.handles.create(spec, asked).to_json()

            return _once(tenant, what, create)
    raise InvalidInput(
        "send application/json, multipart/form-data (a 'request' JSON part plus table parts),"
        " or application/zip (a built bundle)"
    )


@bp.get("/api/v1/bundles/<bid>")
def get_bundle(bid: str) -> Response:
    tenant = require_api_key()
    handles = service().handles
    return jsonify(handles.describe(handles.load(bid, tenant)))


@bp.patch("/api/v1/bundles/<bid>")
def extend_bundle(bid: str) -> Response:
    tenant = require_api_key()
    raw = request.stream.read(4097)  # {"expires_in": n}: never buffer more than a few bytes
    if len(raw) > 4096:
        raise InvalidInput("the request is larger than 4096 bytes")
    doc = _request_json(raw)
    handles = service().handles
    return jsonify(handles.extend(handles.load(bid, tenant), doc.get("expires_in")))


@bp.delete("/api/v1/bundles/<bid>")
def delete_bundle(bid: str) -> tuple[str, int]:
    tenant = require_api_key()
    handles = service().handles
    handles.delete(handles.load(bid, tenant))
    return "", 204


@bp.get("/api/v1/bundles/<bid>/links")
def bundle_links(bid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    handle = svc.handles.load(bid, tenant)
    notebook = svc.handles.manifest(handle)["payload"]["notebook"]
    return jsonify({"id": bid, "links": svc.access.links(handle, base_url(), notebook, int_arg("expires_in"))})


@bp.get("/api/v1/bundles/<bid>/hubs")
def bundle_hubs(bid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    manifest = svc.handles.manifest(svc.handles.load(bid, tenant))
    return jsonify({"id": bid, "hubs": svc.launch.ranking(manifest)})


@bp.get("/api/v1/bundles/<bid>/download")
def api_download(bid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    handle = svc.handles.load(bid, tenant)
    return stream(handle.size, lambda s, e: svc.members.zip_chunks(handle, s, e), f"{bid}.zip")


@bp.post("/api/v1/bundles/<bid>/returns/blobs")
def return_blob(bid: str) -> Response:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, return_token(), "return", fresh=True)
    raw = request.stream.read(4097)  # the request is a few dozen bytes: never buffer more than that
    if len(raw) > 4096:
        raise InvalidInput("the blob request is larger than 4096 bytes")
    try:
        doc = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the blob request is not valid JSON ({exc})") from None
    return jsonify(svc.returns.blob_upload(handle, doc))


@bp.post("/api/v1/bundles/<bid>/returns")
def upload_return(bid: str) -> tuple[Response, int]:
    svc = service()
    handle = checked_handle() or svc.access.check(bid, return_token(), "return")
    summary, created = svc.returns.ingest(
        handle, request.stream, request.headers.get("X-Nbpack-Return-Id"), request.content_length
    )
    if created:
        observe.count(current_app, "returns_ingested")
    summary["links"] = {"manifest": url(base_url(), "return", bid, rid=summary["id"])}
    return jsonify(summary), 201 if created else 200


@bp.get("/api/v1/bundles/<bid>/returns")
def list_returns(bid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    return jsonify({"bundle_id": bid, "returns": svc.returns.list(svc.handles.load(bid, tenant))})


@bp.get("/api/v1/bundles/<bid>/returns/<rid>")
def get_return(bid: str, rid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    return jsonify(svc.returns.view(svc.handles.load(bid, tenant), rid))


@bp.get("/api/v1/bundles/<bid>/returns/<rid>/download")
def download_return(bid: str, rid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    handle = svc.handles.load(bid, tenant)
    info = svc.returns.zip_info(handle, rid)
    return stream(info.size, lambda s, e: svc.returns.zip_chunks(handle, rid, s, e), f"{rid}.zip")


@bp.get("/api/v1/bundles/<bid>/returns/<rid>/files/<path:name>")
def return_file(bid: str, rid: str, name: str) -> Response:
    tenant = require_api_key()
    svc = service()
    size, member = svc.returns.member(svc.handles.load(bid, tenant), rid, name)

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := member.read(1 << 20):
                yield chunk
        finally:
            member.close()

    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # Files are served as downloads, never rendered inline: they come from notebooks anywhere.
    resp = Response(
        chunks(),
        mimetype="application/octet-stream" if "html" in mimetype or "svg" in mimetype else mimetype,
        direct_passthrough=True,
    )
    resp.headers["Content-Length"] = str(size)
    resp.headers["Content-Disposition"] = content_disposition(Path(name).name)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/api/v1/bundles/<bid>/returns/<rid>/notebook.html")
def return_html(bid: str, rid: str) -> Response:
    tenant = require_api_key()
    svc = service()
    handle = svc.handles.load(bid, tenant)
    manifest = svc.returns.view(handle, rid)
    body = notebook_html(svc.returns.notebook(handle, rid, manifest))
    resp = Response(render_template("notebook.html", title=f"Return {rid}", manifest=manifest, body=body))
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/api/v1/payloads")
def list_payloads() -> Response:
    require_api_key()
    catalog = service().payloads
    if catalog is None:
        return jsonify({"payloads": []})
    keyword, text = request.args.get("keyword"), request.args.get("q")
    found = catalog.search(keyword=keyword, text=text) if (keyword or text) else catalog.all()
    return jsonify({"payloads": [p.to_json() for p in found]})


@bp.get("/api/v1/payloads/<name>")
def get_payload(name: str) -> Response:
    require_api_key()
    catalog = service().payloads
    if catalog is None:
        raise InvalidInput("this service has no payload catalog")
    return jsonify(catalog.get(name).to_json())
