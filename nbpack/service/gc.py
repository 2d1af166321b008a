"""Retention: what storage no longer needs, found and removed (``nbpack gc``, the service's optional sweep).

Order matters for what runs beside it. Expired handles go as a DELETE does (state first). Content is judged
unreferenced against a listing of handles taken *after* the content listing, and each candidate is stat'ed again
right before its delete: a create touches every content part it reuses and checks them again once its handle is
written, so a create racing a gc loses nothing (design.md "Retention").
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nbpack import clock, ids
from nbpack.errors import NbpackError, NotFound
from nbpack.service import idempotency, quota
from nbpack.service.core import Service
from nbpack.service.handle import Handle
from nbpack.store.blobs import BLOB_URL_TTL
from nbpack.store.keys import (
    BLOBS,
    CONTENT,
    EXTERNAL,
    HANDLE,
    HANDLES,
    QUOTA,
    RETURNS,
    handle_key,
    return_prefix,
    split_ledger_key,
    split_return_key,
    usage_prefix,
)
from nbpack.webhooks import outbox as webhook_outbox

__all__ = ["Report", "collect", "start_sweeper"]

log = logging.getLogger("nbpack.service.gc")
# A blob may be PUT up to the presign window after its URL was handed out; its return follows the PUT.
BLOB_GRACE = BLOB_URL_TTL + 300
# A return's multipart upload (store.s3_multipart) lives as long as its body takes to arrive: a day is past any.
UPLOAD_GRACE = 86400


@dataclass
class Report:
    """What a gc run removed (or, dry, would remove): storage keys and cache paths, by kind."""

    dry_run: bool
    handles: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    idempotency: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as the CLI prints it."""
        return {
            "dry_run": self.dry_run,
            "handles": self.handles,
            "returns": self.returns,
            "blobs": self.blobs,
            "content": self.content,
            "cache": self.cache,
            "idempotency": self.idempotency,
            "uploads": self.uploads,
        }


def _now() -> datetime:
    return clock.now()


def _older(modified: datetime | None, seconds: int, now: datetime) -> bool:
    return modified is not None and modified < now - timedelta(seconds=seconds)


def _states(svc: Service) -> dict[str, Handle]:
    """Every stored handle by id, expired or not."""
    out = {}
    for info in svc.storage.list(HANDLES):
        if info.key.endswith("/" + HANDLE):
            try:
                handle = Handle.from_json(json.loads(svc.storage.read_bytes(info.key)))
            except (NotFound, ValueError, KeyError, TypeError):
                continue
            out[handle.id] = handle
    return out


def collect(svc: Service, *, dry_run: bool = False) -> Report:
    """One gc pass over the service's storage and this process's cache."""
    report = Report(dry_run)
    now = _now()
    cfg = svc.config
    # 1. expired handles, removed the way DELETE removes them
    states = _states(svc)
    for hid, handle in sorted(states.items()):
        if handle.expired(now):
            report.handles.append(hid)
            if not dry_run:
                svc.handles.delete(handle)
    live = {h: s for h, s in states.items() if h not in report.handles}
    # 1b. tombstones of deleted handles' ledgers, once no upload that reserved before the delete can still be
    # writing (quota.PENDING_STALE), with whatever such an upload wrote after the delete swept (service/quota.py)
    for info in svc.storage.list(QUOTA):
        ledger_of = split_ledger_key(info.key)
        if ledger_of is None:
            continue
        hid = ledger_of
        if not ids.is_id(hid, ids.HANDLE) or hid in states or not _older(info.modified, int(quota.PENDING_STALE), now):
            continue
        report.returns.append(f"{hid}/*")
        if not dry_run:
            buried = quota.buried(svc.storage, hid)
            svc.storage.delete_prefix(return_prefix(hid))
            if buried is not None:
                svc.storage.delete_prefix(usage_prefix(buried[0], hid))
            webhook_outbox.forget(svc.storage, hid)
            svc.storage.delete(info.key)
    # 2. returns past their retention, and blobs no return names
    referenced_blobs: set[str] = set()
    for info in svc.storage.list(RETURNS):
        parts = split_return_key(info.key)
        if parts is None or parts[0] not in live:
            continue
        hid, rid, name = parts
        if name == "manifest.json" and cfg.return_retention and _older(info.modified, cfg.return_retention, now):
            report.returns.append(f"{hid}/{rid}")
            if not dry_run:
                svc.storage.delete(info.key)  # the visibility marker first
                svc.storage.delete_prefix(return_prefix(hid, rid))
                svc.storage.delete_prefix(usage_prefix(live[hid].tenant, hid, rid))
                quota.forget_return(svc.storage, hid, rid)  # its count and bytes are free again
                (svc.cache_dir / "returns" / hid / f"{rid}.zip").unlink(missing_ok=True)
        elif name == EXTERNAL:
            try:
                records = json.loads(svc.storage.read_bytes(info.key))
            except (NotFound, ValueError):
                continue
            referenced_blobs |= {
                r["key"] for r in records.values() if isinstance(r, dict) and isinstance(r.get("key"), str)
            }
    for info in svc.storage.list(BLOBS):
        hid = info.key.split("/")[1]
        if (hid not in live or info.key not in referenced_blobs) and _older(info.modified, BLOB_GRACE, now):
            report.blobs.append(info.key)
            if not dry_run:
                svc.storage.delete(info.key)
    # 2b. multipart uploads of return zips a killed worker left unfinished: invisible to LIST, but stored and billed
    # (a bucket lifecycle rule AbortIncompleteMultipartUpload does the same on AWS: docs/deploy.md)
    abort = getattr(getattr(svc.storage, "stager", None), "abort_stale", None)
    if abort is not None:
        report.uploads = abort(RETURNS, now - timedelta(seconds=UPLOAD_GRACE), dry_run=dry_run)
    # 3. content no handle references: content listed first, handles after, each candidate re-checked
    content = list(svc.storage.list(CONTENT))
    # (a dry run has not purged the expired handles: their parts count as gone all the same)
    referenced = {key for hid, handle in _states(svc).items() if hid not in report.handles for key, _ in handle.parts}
    for info in content:
        if info.key in referenced or not _older(info.modified, cfg.gc_grace, now):
            continue
        try:
            fresh = svc.storage.stat(info.key)
        except NotFound:
            continue
        if not _older(fresh.modified, cfg.gc_grace, _now()):
            continue  # a create reused it meanwhile
        report.content.append(info.key)
        if not dry_run:
            svc.storage.delete(info.key)
    # 4. remembered creates (Idempotency-Key) past their 24 h, of every tenant with a key or a handle
    for tenant in sorted(set(cfg.api_key_tenants.values()) | {h.tenant for h in states.values()}):
        report.idempotency += idempotency.sweep(svc.storage, tenant, dry_run=dry_run)
    # 5. this replica's caches of handles that are gone (DELETE purged only the replica that served it)
    for kind in ("git", "returns"):
        folder = svc.cache_dir / kind
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            hid = path.name.removesuffix(".git")
            if ids.is_id(hid, ids.HANDLE) and (hid not in live or not svc.storage.exists(handle_key(hid, HANDLE))):
                report.cache.append(str(path))
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return report


def start_sweeper(svc: Service, interval: int) -> threading.Thread:
    """A daemon thread running :func:`collect` every ``interval`` seconds; failures are logged, never raised."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                report = collect(svc)
                log.info("gc sweep", extra={k: len(v) for k, v in report.to_json().items() if isinstance(v, list)})
            except NbpackError as exc:
                log.warning("gc sweep failed: %s", exc.message)
            except Exception:  # noqa: BLE001 - the sweep must never take the service down
                log.exception("gc sweep failed")

    thread = threading.Thread(target=run, name="nbpack-gc", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
