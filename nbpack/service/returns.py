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
from typing import IO, Any, BinaryIO, cast

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
from nbpack.bundle.zipstream import StreamDigests
from nbpack.clock import iso, now
from nbpack.errors import Conflict, Forbidden, InvalidBundle, InvalidInput, NotFound
from nbpack.ids import RETURN, is_id
from nbpack.service import quota
from nbpack.service.capabilities import Capabilities
from nbpack.service.context import Context
from nbpack.service.handle import Handle
from nbpack.store import blobs
from nbpack.store.backends import ObjectInfo
from nbpack.store.keys import (
    EXTERNAL,
    is_return_manifest,
    return_key,
    return_prefix,
)
from nbpack.webhooks import outbox
from nbpack.webhooks.dispatch import Dispatcher

__all__ = ["Returns"]

log = logging.getLogger("nbpack.service.returns")


class Returns:
    """The return bundles of handles: taken in once each, listed, and served whole or by member."""

    def __init__(self, ctx: Context, access: Capabilities, webhooks: Dispatcher) -> None:
        self.ctx = ctx
        self.access = access
        self.webhooks = webhooks

    def blob_upload(self, handle: Handle, doc: Any) -> dict[str, Any]:
        """Where to PUT one large output of a return (``{sha256, bytes}``), or that it is already stored."""
        return blobs.upload_url(self.ctx.storage, self.ctx.config, self.access.direct_uploads, handle.id, doc)

    def ingest(
        self, handle: Handle, stream: IO[bytes], announced: str | None = None, length: int | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Validate an uploaded return bundle and store it once; ``(summary, created)``.

        Outputs the manifest marks external and the zip leaves out must already sit in ``blobs/<bid>/<sha256>``;
        each is verified (size and a streamed sha256) before the return becomes visible. A return already stored
        answers before any quota is checked, so a retry never fails on a full quota.

        ``announced``: the return's id as the uploader declares it (``X-Nbpack-Return-Id``). Its zip's key is then
        known before the body arrives, so the body is stored as it comes in (S3: a multipart upload; a folder: the
        file written in place) while it is spooled for the checks, and committed only if they all pass and the
        manifest's id is the announced one. Nothing reads a return's zip before its manifest exists.

        ``length``: the body's ``Content-Length``, when sent: a small body is then checked and stored from memory.
        """
        storage, cfg, bid = self.ctx.storage, self.ctx.config, handle.id
        if announced is not None and not is_id(announced, RETURN):
            raise InvalidInput(f"X-Nbpack-Return-Id {announced[:40]!r} is not a return id (r- and 24 hex digits)")
        zip_key = return_key(bid, announced, "return.zip") if announced is not None else None
        # Members hashed as they arrive (and, on S3, as they are sent): the check needs no second pass over them.
        digests = StreamDigests(cfg.return_limits)
        stage = self.ctx.receive_staged(stream, cfg.return_limits.max_total, zip_key, digests.feed, length)
        queued = False
        try:
            with open_return(stage.local(), cfg.return_limits) as rf:
                problems = check_return(rf, external_ok=True, known=digests.matching(rf.zf))
                if problems:
                    raise InvalidBundle(f"return bundle is invalid: {problems[0]}")
                if rf.manifest["bundle_id"] != handle.content_id:
                    raise Forbidden(
                        f"this return bundle belongs to bundle {rf.manifest['bundle_id']}, not to the content of {bid}",
                        code="token_bundle",
                    )
                manifest = rf.manifest
                absent = external_paths(manifest) - set(rf.zf.namelist())
            rid = manifest["id"]
            if announced is not None and rid != announced:
                raise InvalidBundle(
                    f"the return was announced as {announced} (X-Nbpack-Return-Id) but its manifest's id is {rid}",
                    code="return_id_mismatch",
                )
            entries = {e["path"]: e for e in manifest["contents"]}
            size = stage.size + sum(entries[p]["bytes"] for p in absent)
            # One conditional write of the handle's ledger (service/quota.py); a stored return is answered here.
            reserved = quota.reserve_return(storage, cfg, bid, handle.tenant, rid, size)
            if reserved is None:
                # Stored before, maybe by a replica that died before answering: its notification is queued or done.
                queued = self._queue_webhook(handle, manifest)
                return _summary(bid, manifest), False
            try:
                if absent:
                    records = {p: blobs.verify(storage, bid, p, entries[p]) for p in sorted(absent)}
                    # Before the zip: whichever zip ends up stored, a member it lacks can be found here.
                    storage.put_bytes(return_key(bid, rid, EXTERNAL), json.dumps(records, sort_keys=True).encode())
                stage.commit(return_key(bid, rid, "return.zip"))
                # Before the return is visible: no answer goes out for a return whose notification is not stored.
                queued = self._queue_webhook(handle, manifest)
                # Written last: a return becomes visible only once its zip is whole. Create-once, so of concurrent
                # uploads of one return exactly one is "created" (one 201, one webhook).
                created = storage.put_if_absent(
                    return_key(bid, rid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode()
                )
            except BaseException:
                quota.release(storage, reserved)  # its ledger entry (unless stored meanwhile) and its tenant charge
                raise
            if not created:
                if reserved.charge is not None:
                    storage.delete(reserved.charge)  # the upload that stored it is charged for it
                return _summary(bid, manifest), False
        finally:
            stage.close()  # the local copy goes; an upload not committed (invalid, stored already, failed) is aborted
            if queued:  # now that the return is visible (or failed): a sender looking earlier would wait a poll
                self.webhooks.kick()
        # No check of handle.json after the commit: a DELETE buries the ledger first, so a reservation after it
        # fails, and what an upload that reserved just before it writes is unreachable and swept by gc
        # (service/quota.py).
        log.info("return ingested", extra={"bundle": bid, "return": rid})
        if notebook_missing(manifest):
            log.warning("return without its notebook", extra={"bundle": bid, "return": rid})
        return _summary(bid, manifest), True

    def _queue_webhook(self, handle: Handle, manifest: dict[str, Any]) -> bool:
        """Queue the return's webhook in the outbox (once, whichever upload of it gets here); True if it waits."""
        if not handle.callback_url:
            return False
        notice = outbox.notice_for(
            handle.tenant, handle.id, manifest["id"], handle.callback_url, manifest["status"], now()
        )
        return outbox.enqueue(self.ctx.storage, notice)

    def list(self, handle: Handle) -> list[dict[str, Any]]:
        """The returns of a handle that are fully ingested, oldest first."""
        out = []
        for info in self.ctx.storage.list(return_prefix(handle.id)):
            if is_return_manifest(handle.id, info.key):
                m = json.loads(self.ctx.storage.read_bytes(info.key))
                summary = _summary(handle.id, m)
                summary["received"] = iso(info.modified) if info.modified else None
                out.append(summary)
        return sorted(out, key=lambda s: (s.get("received") or "", s["id"]))

    def manifest(self, handle: Handle, rid: str) -> dict[str, Any]:
        """One return's manifest."""
        try:
            return json.loads(self.ctx.storage.read_bytes(return_key(handle.id, rid, "manifest.json")))
        except NotFound:
            raise NotFound(f"no return {rid} for bundle {handle.id}") from None

    def view(self, handle: Handle, rid: str) -> dict[str, Any]:
        """One return's manifest as the API and pages show it: ``bundle_id`` is the handle (the id everywhere a user
        sees one); the manifest's own ``bundle_id``, the id of the content it ran on, is ``content_id``."""
        manifest = self.manifest(handle, rid)
        return {**manifest, "bundle_id": handle.id, "content_id": manifest["bundle_id"]}

    def zip_info(self, handle: Handle, rid: str) -> ObjectInfo:
        """The return zip's object info (NotFound unless the return is visible)."""
        self.manifest(handle, rid)
        return self.ctx.storage.stat(return_key(handle.id, rid, "return.zip"))

    def zip_chunks(self, handle: Handle, rid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The return zip's bytes, streamed from storage."""
        return self.ctx.storage.iter_chunks(return_key(handle.id, rid, "return.zip"), 1 << 20, start, end)

    def member(self, handle: Handle, rid: str, name: str) -> tuple[int, BinaryIO]:
        """One file of a return bundle: (size, stream), from the zip or, for an external output, its blob."""
        manifest = self.manifest(handle, rid)
        listed = {e["path"] for e in manifest["contents"]} | {RETURN_MANIFEST, CRATE}
        if name not in listed:
            raise NotFound(f"return {rid} has no file {name!r}")
        zf = archive.open_zip(self._local(handle.id, rid), self.ctx.config.return_limits)
        if name in zf.namelist():
            info = zf.getinfo(name)
            return info.file_size, cast(BinaryIO, _ClosingMember(zf, zf.open(info)))
        zf.close()
        return self._external(handle.id, rid, name)

    def notebook(self, handle: Handle, rid: str, manifest: dict[str, Any] | None = None) -> bytes:
        """The executed notebook of a return (``manifest``: its manifest, when already read)."""
        manifest = manifest or self.manifest(handle, rid)
        if notebook_missing(manifest):
            raise NotFound(f"return {rid} was sent without its notebook")
        with archive.open_zip(self._local(handle.id, rid), self.ctx.config.return_limits) as zf:
            return archive.read_member(zf, manifest["notebook"])

    def _local(self, bid: str, rid: str) -> Path:
        # Returns are immutable, so a local copy is a safe cache for random access into the zip.
        path = self.ctx.cache_dir / "returns" / bid / f"{rid}.zip"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.ctx.storage.download_to(return_key(bid, rid, "return.zip"), path)
        return path

    def _external(self, bid: str, rid: str, name: str) -> tuple[int, BinaryIO]:
        storage = self.ctx.storage
        try:
            record = json.loads(storage.read_bytes(return_key(bid, rid, EXTERNAL)))[name]
        except (NotFound, KeyError):
            raise NotFound(f"return {rid} has no stored copy of {name!r}") from None
        info = storage.stat(record["key"])
        # A presigned URL handed out before ingest could still overwrite the blob: never serve changed bytes.
        if info.size != record["bytes"] or (record.get("etag") and info.etag != record["etag"]):
            raise Conflict(f"{name}: its blob changed after the return was ingested", code="blob_changed")
        return info.size, storage.open(record["key"])


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


class _ClosingMember:
    """A zip member stream that also closes its zip."""

    def __init__(self, zf: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.zf, self.member = zf, member

    def read(self, n: int = -1) -> bytes:
        return self.member.read(n)

    def close(self) -> None:
        self.member.close()
        self.zf.close()
