"""Return bundles of a handle: ingest (validated, quota-checked, stored once), list, and serve their members.

A return is ``returns/<bid>/<rid>/``: its zip, its manifest (written last: what makes it visible) and, for outputs
sent straight to the object store, ``external.json`` naming their verified blobs.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from nbpack.bundle import archive
from nbpack.bundle.returns import (
    CRATE,
    RETURN_MANIFEST,
    check_return,
    external_paths,
    notebook_missing,
    open_return,
    return_warnings,
)
from nbpack.clock import iso, now
from nbpack.errors import Conflict, Forbidden, InvalidBundle, NbpackError, NotFound, TooLarge
from nbpack.store import blobs
from nbpack.store.backends import ObjectInfo
from nbpack.store.keys import EXTERNAL, HANDLE, handle_key, return_key, usage_key
from nbpack.webhooks import outbox

if TYPE_CHECKING:
    from nbpack.service.core import Service

__all__ = [
    "TooManyReturns",
    "ingest",
    "list_returns",
    "return_chunks",
    "return_manifest",
    "return_member",
    "return_notebook",
    "return_object",
]

log = logging.getLogger("nbpack.service.core")


class TooManyReturns(NbpackError):
    """A handle holds as many returns as the service allows (429: a later upload may fit after gc)."""

    code = "return_quota"
    http_status = 429


def ingest(
    svc: Service, bid: str, stream: IO[bytes], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bool]:
    """Validate an uploaded return bundle and store it once; ``(summary, created)``.

    Outputs the manifest marks external and the zip leaves out must already sit in ``blobs/<bid>/<sha256>``;
    each is verified (size and a streamed sha256) before the return becomes visible. A return already stored
    answers before any quota is checked, so a retry never fails on a full quota.
    """
    state = state or svc.handle(bid)
    limit = svc.config.return_limits.max_total
    path = svc.receive(stream, limit)
    try:
        with open_return(path, svc.config.return_limits) as rf:
            problems = check_return(rf, external_ok=True)
            if problems:
                raise InvalidBundle(f"return bundle is invalid: {problems[0]}")
            if rf.manifest["bundle_id"] != state["content_id"]:
                raise Forbidden(
                    f"this return bundle belongs to bundle {rf.manifest['bundle_id']}, not to the content of {bid}",
                    code="token_bundle",
                )
            manifest = rf.manifest
            absent = external_paths(manifest) - set(rf.zf.namelist())
        rid = manifest["id"]
        # One listing answers both "stored already?" and the per-handle quota (no HEAD of the manifest).
        held = stored_objects(svc, bid)
        if any(info.key == return_key(bid, rid, "manifest.json") for info in held):
            # Stored before, maybe by a replica that died before answering: its notification is queued or done.
            _notify(svc, state, bid, manifest)
            return _summary(bid, manifest), False
        entries = {e["path"]: e for e in manifest["contents"]}
        size = path.stat().st_size + sum(entries[p]["bytes"] for p in absent)
        check_quota(svc, bid, state, size, held)
        if absent:
            records = {p: blobs.verify(svc.storage, bid, p, entries[p]) for p in sorted(absent)}
            # Before the zip: whichever zip ends up stored, a member it lacks can be found here.
            svc.storage.put_bytes(return_key(bid, rid, EXTERNAL), json.dumps(records, sort_keys=True).encode())
        svc.storage.put_file(return_key(bid, rid, "return.zip"), path)
        svc.storage.put_bytes(usage_key(state["tenant"], bid, rid, size), b"")
        # Before the return is visible: no answer goes out for a return whose notification is not stored.
        _notify(svc, state, bid, manifest)
        # Written last: a return becomes visible only once its zip is whole. Create-once, so of concurrent
        # uploads of one return exactly one is "created" (one 201, one webhook).
        if not svc.storage.put_if_absent(
            return_key(bid, rid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode()
        ):
            return _summary(bid, manifest), False
    finally:
        path.unlink(missing_ok=True)
    if not svc.storage.exists(handle_key(bid, HANDLE)):
        # Deleted while this upload ran: leave nothing behind that no handle owns.
        svc.storage.delete_prefix(f"returns/{bid}/{rid}/")
        raise NotFound(f"no such bundle {bid}")
    log.info("return ingested", extra={"bundle": bid, "return": rid})
    if notebook_missing(manifest):
        log.warning("return without its notebook", extra={"bundle": bid, "return": rid})
    return _summary(bid, manifest), True


def _notify(svc: Service, state: dict[str, Any], bid: str, manifest: dict[str, Any]) -> None:
    """Queue the return's webhook in the outbox (once, whichever upload of it gets here) and wake the sender."""
    if not state.get("callback_url"):
        return
    notice = outbox.notice_for(state["tenant"], bid, manifest["id"], state["callback_url"], manifest["status"], now())
    if outbox.enqueue(svc.storage, notice):
        svc.webhooks.kick()


def stored_objects(svc: Service, bid: str) -> list[ObjectInfo]:
    """Every object a handle's returns hold: their zips and manifests, and the blobs of direct uploads."""
    return [info for prefix in (f"returns/{bid}/", f"blobs/{bid}/") for info in svc.storage.list(prefix)]


def check_quota(
    svc: Service, bid: str, state: dict[str, Any], adding: int, held: list[ObjectInfo] | None = None
) -> None:
    """Per-handle count and bytes (over ``held``, listed when not given), then the tenant's; raises before
    anything is stored."""
    count, used = 0, 0
    for info in stored_objects(svc, bid) if held is None else held:
        used += info.size
        count += info.key.startswith(f"returns/{bid}/") and info.key.endswith("/manifest.json")
    if count >= svc.config.max_returns_per_bundle:
        raise TooManyReturns(f"bundle {bid} already holds {count} returns, the limit of this service")
    if used + adding > svc.config.max_return_bytes_per_bundle:
        raise TooLarge(
            f"bundle {bid} would hold more than {svc.config.max_return_bytes_per_bundle} bytes of returns",
            code="return_bytes_quota",
        )
    svc.check_tenant_quota(state["tenant"], adding)


def _summary(bid: str, m: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": m["id"],
        "bundle_id": bid,
        "status": m["status"],
        "started": m["started"],
        "ended": m["ended"],
        "outputs": len(m["outputs"]),
        "values": [v["name"] for v in m["values"]],
        "error": m.get("error"),
    }
    warnings = return_warnings(m)
    if warnings:
        out["notebook_missing"] = notebook_missing(m)
        out["warnings"] = warnings
    return out


def list_returns(svc: Service, bid: str, tenant: str | None = None) -> list[dict[str, Any]]:
    """The returns of a handle that are fully ingested, oldest first."""
    svc.handle(bid, tenant)
    out = []
    for info in svc.storage.list(f"returns/{bid}/"):
        if info.key.endswith("/manifest.json"):
            m = json.loads(svc.storage.read_bytes(info.key))
            summary = _summary(bid, m)
            summary["received"] = iso(info.modified) if info.modified else None
            out.append(summary)
    return sorted(out, key=lambda s: (s.get("received") or "", s["id"]))


def return_manifest(svc: Service, bid: str, rid: str, tenant: str | None = None) -> dict[str, Any]:
    """One return's manifest."""
    svc.handle(bid, tenant)
    try:
        return json.loads(svc.storage.read_bytes(return_key(bid, rid, "manifest.json")))
    except NotFound:
        raise NotFound(f"no return {rid} for bundle {bid}") from None


def return_object(svc: Service, bid: str, rid: str, tenant: str | None = None) -> ObjectInfo:
    """The return zip's object info."""
    return_manifest(svc, bid, rid, tenant)
    return svc.storage.stat(return_key(bid, rid, "return.zip"))


def return_chunks(svc: Service, bid: str, rid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The return zip's bytes, streamed from storage."""
    return svc.storage.iter_chunks(return_key(bid, rid, "return.zip"), 1 << 20, start, end)


def _local_return(svc: Service, bid: str, rid: str) -> Path:
    # Returns are immutable, so a local copy is a safe cache for random access into the zip.
    path = svc.cache_dir / "returns" / bid / f"{rid}.zip"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        svc.storage.download_to(return_key(bid, rid, "return.zip"), path)
    return path


def return_member(svc: Service, bid: str, rid: str, name: str, tenant: str | None = None) -> tuple[int, BinaryIO]:
    """One file of a return bundle: (size, stream), from the zip or, for an external output, its blob."""
    manifest = return_manifest(svc, bid, rid, tenant)
    listed = {e["path"] for e in manifest["contents"]} | {RETURN_MANIFEST, CRATE}
    if name not in listed:
        raise NotFound(f"return {rid} has no file {name!r}")
    zf = archive.open_zip(_local_return(svc, bid, rid), svc.config.return_limits)
    if name in zf.namelist():
        info = zf.getinfo(name)
        return info.file_size, cast(BinaryIO, _ClosingMember(zf, zf.open(info)))
    zf.close()
    return _external_member(svc, bid, rid, name)


def _external_member(svc: Service, bid: str, rid: str, name: str) -> tuple[int, BinaryIO]:
    try:
        record = json.loads(svc.storage.read_bytes(return_key(bid, rid, EXTERNAL)))[name]
    except (NotFound, KeyError):
        raise NotFound(f"return {rid} has no stored copy of {name!r}") from None
    info = svc.storage.stat(record["key"])
    # A presigned URL handed out before ingest could still overwrite the blob: never serve changed bytes.
    if info.size != record["bytes"] or (record.get("etag") and info.etag != record["etag"]):
        raise Conflict(f"{name}: its blob changed after the return was ingested", code="blob_changed")
    return info.size, svc.storage.open(record["key"])


def return_notebook(svc: Service, bid: str, rid: str, tenant: str | None = None) -> bytes:
    """The executed notebook of a return."""
    manifest = return_manifest(svc, bid, rid, tenant)
    if notebook_missing(manifest):
        raise NotFound(f"return {rid} was sent without its notebook")
    with archive.open_zip(_local_return(svc, bid, rid), svc.config.return_limits) as zf:
        return archive.read_member(zf, manifest["notebook"])


class _ClosingMember:
    """A zip member stream that also closes its zip."""

    def __init__(self, zf: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.zf, self.member = zf, member

    def read(self, n: int = -1) -> bytes:
        return self.member.read(n)

    def close(self) -> None:
        self.member.close()
        self.zf.close()
