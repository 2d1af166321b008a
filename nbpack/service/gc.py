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
from nbpack.service.core import Service
from nbpack.store.blobs import BLOB_URL_TTL
from nbpack.store.keys import EXTERNAL, HANDLE

__all__ = ["Report", "collect", "start_sweeper"]

log = logging.getLogger("nbpack.service.gc")
# A blob may be PUT up to the presign window after its URL was handed out; its return follows the PUT.
BLOB_GRACE = BLOB_URL_TTL + 300


@dataclass
class Report:
    """What a gc run removed (or, dry, would remove): storage keys and cache paths, by kind."""

    dry_run: bool
    handles: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as the CLI prints it."""
        return {
            "dry_run": self.dry_run,
            "handles": self.handles,
            "returns": self.returns,
            "blobs": self.blobs,
            "content": self.content,
            "cache": self.cache,
        }


def _older(modified: datetime | None, seconds: int, now: datetime) -> bool:
    return modified is not None and modified < now - timedelta(seconds=seconds)


def _states(svc: Service) -> dict[str, dict[str, Any]]:
    """Every stored handle state by id, expired or not."""
    out = {}
    for info in svc.storage.list("handles/"):
        if info.key.endswith("/" + HANDLE):
            try:
                state = json.loads(svc.storage.read_bytes(info.key))
            except (NotFound, ValueError):
                continue
            out[state["id"]] = state
    return out


def collect(svc: Service, *, dry_run: bool = False) -> Report:
    """One gc pass over the service's storage and this process's cache."""
    report = Report(dry_run)
    now = clock.now()
    cfg = svc.config
    # 1. expired handles, removed the way DELETE removes them
    states = _states(svc)
    for hid, state in sorted(states.items()):
        if datetime.fromisoformat(state["expires"].replace("Z", "+00:00")) <= now:
            report.handles.append(hid)
            if not dry_run:
                svc.purge(state)
    live = {h: s for h, s in states.items() if h not in report.handles}
    # 2. returns past their retention, and blobs no return names
    referenced_blobs: set[str] = set()
    for info in svc.storage.list("returns/"):
        parts = info.key.split("/")
        if len(parts) != 4 or parts[1] not in live:
            continue
        hid, rid, name = parts[1], parts[2], parts[3]
        if name == "manifest.json" and cfg.return_retention and _older(info.modified, cfg.return_retention, now):
            report.returns.append(f"{hid}/{rid}")
            if not dry_run:
                svc.storage.delete(info.key)  # the visibility marker first
                svc.storage.delete_prefix(f"returns/{hid}/{rid}/")
                svc.storage.delete_prefix(f"tenants/{live[hid]['tenant']}/usage/{hid}/{rid}.")
                (svc.cache_dir / "returns" / hid / f"{rid}.zip").unlink(missing_ok=True)
        elif name == EXTERNAL:
            try:
                records = json.loads(svc.storage.read_bytes(info.key))
            except (NotFound, ValueError):
                continue
            referenced_blobs |= {
                r["key"] for r in records.values() if isinstance(r, dict) and isinstance(r.get("key"), str)
            }
    for info in svc.storage.list("blobs/"):
        hid = info.key.split("/")[1]
        if (hid not in live or info.key not in referenced_blobs) and _older(info.modified, BLOB_GRACE, now):
            report.blobs.append(info.key)
            if not dry_run:
                svc.storage.delete(info.key)
    # 3. content no handle references: content listed first, handles after, each candidate re-checked
    content = list(svc.storage.list("content/"))
    # (a dry run has not purged the expired handles: their parts count as gone all the same)
    referenced = {key for hid, state in _states(svc).items() if hid not in report.handles for key, _ in state["parts"]}
    for info in content:
        if info.key in referenced or not _older(info.modified, cfg.gc_grace, now):
            continue
        try:
            fresh = svc.storage.stat(info.key)
        except NotFound:
            continue
        if not _older(fresh.modified, cfg.gc_grace, clock.now()):
            continue  # a create reused it meanwhile
        report.content.append(info.key)
        if not dry_run:
            svc.storage.delete(info.key)
    # 4. this replica's caches of handles that are gone (DELETE purged only the replica that served it)
    for kind in ("git", "returns"):
        folder = svc.cache_dir / kind
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            hid = path.name.removesuffix(".git")
            if ids.is_id(hid, ids.HANDLE) and (hid not in live or not svc.storage.exists(f"handles/{hid}/{HANDLE}")):
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
