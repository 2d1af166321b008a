"""Handles: a bundle stored under a new id (built here or pushed), listed, described, extended, deleted.

A create writes the zip's parts (shared content by digest), the manifest and notebook, the tenant's usage and
listing markers, then ``handle.json`` last: its presence is what makes the handle exist for every process.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nbpack.bundle.build import BuildSpec, build_bundle, check_bundle, open_bundle, with_returns
from nbpack.clock import iso, now
from nbpack.config import DEFAULT_TENANT
from nbpack.errors import InvalidBundle, InvalidInput, NotFound
from nbpack.ids import HANDLE as HANDLE_ID
from nbpack.ids import new_handle_id
from nbpack.ids import pattern as id_pattern
from nbpack.service import quota
from nbpack.service.answers import Stored, public_manifest
from nbpack.service.capabilities import Capabilities
from nbpack.service.context import Context
from nbpack.service.create import check_callback_url
from nbpack.service.handle import Handle, load, save
from nbpack.store import parts as partstore
from nbpack.store.keys import (
    HANDLE,
    blob_prefix,
    handle_key,
    handle_prefix,
    index_keys,
    index_prefix,
    is_content,
    return_prefix,
    usage_prefix,
)
from nbpack.webhooks import outbox as webhook_outbox

__all__ = ["CreateRequest", "Handles"]

log = logging.getLogger("nbpack.service.handles")
_MAX_OWNER = 200
_MAX_PAGE = 500


@dataclass(frozen=True)
class _New:
    """What a create decides before its bundle is stored: the handle's id, nonce, time, link lifetime, returns."""

    id: str
    nonce: str
    created: datetime
    ttl: int
    returns: dict[str, Any]


@dataclass(frozen=True)
class CreateRequest:
    """Who asks for a create, and what they ask of the handle: one value for both ways in (build, or store a zip)."""

    base_url: str
    expires_in: int | None = None
    callback_url: str | None = None
    tenant: str = DEFAULT_TENANT
    owner: str | None = None


class Handles:
    """Create, read, list, extend and delete handles over the service's storage."""

    def __init__(self, ctx: Context, access: Capabilities) -> None:
        self.ctx = ctx
        self.access = access

    # -- create ---------------------------------------------------------------------------------

    def create(self, spec: BuildSpec, req: CreateRequest) -> Stored:
        """Build a bundle from ``spec`` and store it as a new handle (see :meth:`store`)."""
        new = self._begin(req)
        with tempfile.TemporaryDirectory(prefix="nbpack-create-", dir=self.ctx.tmp_dir()) as tmp:
            path = Path(tmp) / "bundle.zip"
            # The returns section goes in with the build: the zip is written once, never rewritten to add it, and
            # each record is keyed as it is written (its members hashed once, by the build).
            keys: dict[str, str] = {}
            build_bundle(spec, path, returns=new.returns, record_keys=keys)
            stored = self._store(path, req, new, keys)
        stored.basket = spec.basket_report  # what each basket item became: the create answer says it
        return stored

    def store(self, zip_path: Path, req: CreateRequest) -> Stored:
        """Store a built bundle zip (checked first) as a new handle; its heavy members are shared by content."""
        return self._store(zip_path, req, self._begin(req), None)

    def _begin(self, req: CreateRequest) -> _New:
        """Refuse a bad request before any work; a fresh id, nonce, time and the returns section of its bundle."""
        ttl = self.access.expires_in(req.expires_in)
        cfg = self.ctx.config
        if req.callback_url and not cfg.webhook_secrets.get(req.tenant):
            raise InvalidInput(
                "callback_url needs a webhook secret for this tenant (NBPACK_WEBHOOK_SECRETS) to sign notifications"
            )
        check_callback_url(req.callback_url, cfg.webhook_allow.get(req.tenant), local_mode=cfg.local_mode)
        owner = req.owner
        if owner is not None and (
            not isinstance(owner, str)
            or not owner.strip()
            or len(owner) > _MAX_OWNER
            or any(ord(c) < 32 for c in owner)
        ):
            raise InvalidInput(f"owner must be a user name of 1 to {_MAX_OWNER} printable characters")
        quota.check_tenant(self.ctx.storage, self.ctx.config, req.tenant, 0)
        hid, nonce, created = new_handle_id(), secrets.token_urlsafe(12), now()
        return _New(hid, nonce, created, ttl, self.access.returns_section(hid, nonce, created, ttl, req.base_url))

    def _store(self, zip_path: Path, req: CreateRequest, new: _New, keys: dict[str, str] | None) -> Stored:
        """Store the zip as the new handle; ``keys``: its record keys when this service built it, None when pushed."""
        storage = self.ctx.storage
        pushed = keys is None
        with open_bundle(zip_path, self.ctx.config.bundle_limits) as bf:
            # Only a pushed zip is checked deep (every member hashed, every catalog opened): the service's own
            # build needs no second look.
            problems = check_bundle(bf) if pushed else []
            if problems:
                raise InvalidBundle(f"bundle is invalid: {problems[0]}")
            manifest = bf.manifest
            notebook = bf.read(manifest["payload"]["notebook"])
        quota.check_tenant(storage, self.ctx.config, req.tenant, zip_path.stat().st_size)
        with tempfile.TemporaryDirectory(prefix="nbpack-store-", dir=self.ctx.tmp_dir()) as tmp:
            if keys is None:
                # A pushed zip: its copy gets the returns section (the id does not cover it), its records keyed as
                # they are copied (the deep check has just proved the manifest's digests).
                final, keys = Path(tmp) / "bundle.zip", {}
                manifest = with_returns(
                    zip_path, final, new.returns, record_keys=keys, limits=self.ctx.config.bundle_limits
                )
            else:
                final = zip_path
            size = final.stat().st_size
            # Charged before anything is written, under the tenant's quota lock: parallel creates on any replica
            # never pass the quota together. A create that fails gives the bytes back.
            charged = quota.charge_tenant(storage, self.ctx.config, req.tenant, new.id, "bundle", size)
            saved = False
            try:
                parts = partstore.put_parts(storage, new.id, final, keys)
                handle = Handle(
                    id=new.id,
                    tenant=req.tenant,
                    owner=req.owner,
                    content_id=manifest["id"],
                    title=manifest["title"],
                    nonce=new.nonce,
                    created=iso(new.created),
                    created_ms=int(time.time() * 1000),
                    expires=iso(new.created + timedelta(seconds=self.ctx.config.handle_ttl)),
                    callback_url=req.callback_url,
                    bytes=size,
                    parts=tuple((key, seg.size) for key, seg in parts),
                )
                storage.put_bytes(handle_key(new.id, "notebook.ipynb"), notebook)
                storage.put_bytes(handle_key(new.id, "manifest.json"), json.dumps(manifest, sort_keys=True).encode())
                for key in index_keys(handle.to_json()):
                    storage.put_bytes(key, b"")
                # Written last: its presence is what makes the handle exist (and its tokens valid) everywhere.
                save(storage, handle)
                saved = True
                # A gc that judged a reused content part unreferenced just before this handle appeared may have
                # removed it since: check each once more and put back what is gone.
                for key, seg in parts:
                    if is_content(key):
                        partstore.ensure_content(storage, key, final, seg, recheck=True)
            except BaseException:
                if not saved:  # no handle came to be: its bytes are not the tenant's
                    storage.delete(charged)
                raise
        log.info("bundle stored", extra={"bundle": new.id, "bytes": size})
        return Stored(
            new.id,
            public_manifest(manifest),
            self.access.links(handle, req.base_url, manifest["payload"]["notebook"], req.expires_in),
            True,
            iso(new.created + timedelta(seconds=new.ttl)),
            handle.expires,
            req.owner,
        )

    # -- read -----------------------------------------------------------------------------------

    def load(self, bid: str, tenant: str | None = None) -> Handle:
        """A live handle (its ``handle.json`` read once); NotFound when missing, expired or another tenant's."""
        return load(self.ctx.storage, bid, tenant)

    def manifest(self, handle: Handle) -> dict[str, Any]:
        """The handle's stored manifest, return token included (never sent as is: see ``public_manifest``)."""
        try:
            return json.loads(self.ctx.storage.read_bytes(handle_key(handle.id, "manifest.json")))
        except NotFound:
            raise NotFound(f"no such bundle {handle.id}") from None

    def describe(self, handle: Handle) -> dict[str, Any]:
        """The API view of a handle: its manifest (no return token) with ``id`` the handle's (the one id a user sees)
        and ``content_id`` the manifest's own, plus ``handle`` (the summary)."""
        manifest = public_manifest(self.manifest(handle))
        return {**manifest, "id": handle.id, "content_id": manifest["id"], "handle": handle.summary()}

    def notebook(self, handle: Handle) -> bytes:
        """The bundle's notebook as built (for previews)."""
        return self.ctx.storage.read_bytes(handle_key(handle.id, "notebook.ipynb"))

    def list(self, tenant: str, owner: str | None = None, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        """A tenant's live handles, newest first, ``limit`` at a time; ``next`` is the cursor of the next page."""
        if not 1 <= limit <= _MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {_MAX_PAGE}")
        if cursor is not None and not re.fullmatch(r"\d{13}-" + id_pattern(HANDLE_ID), cursor):
            raise InvalidInput("cursor is not one this service handed out")
        prefix = index_prefix(tenant, owner)
        found: list[dict[str, Any]] = []
        nxt = None
        for info in self.ctx.storage.list(prefix):
            name = info.key[len(prefix) :]
            if cursor is not None and name <= cursor:
                continue
            try:
                handle = load(self.ctx.storage, name[14:], tenant)
            except NotFound:
                continue  # deleted or expired since: gc removes its markers
            if len(found) == limit:
                nxt = found[-1]["cursor"]
                break
            found.append({**handle.summary(), "cursor": name})
        return {"bundles": [{k: v for k, v in f.items() if k != "cursor"} for f in found], "next": nxt}

    # -- change ---------------------------------------------------------------------------------

    def extend(self, handle: Handle, expires_in: Any) -> dict[str, Any]:
        """Set a handle to expire ``expires_in`` seconds from now (its tenant's call); the new summary."""
        cfg = self.ctx.config
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 60 <= expires_in <= cfg.max_handle_ttl
        ):
            raise InvalidInput(f"expires_in must be between 60 and {cfg.max_handle_ttl} seconds")
        longer = Handle.from_json({**handle.to_json(), "expires": iso(now() + timedelta(seconds=expires_in))})
        save(self.ctx.storage, longer)
        if not self.ctx.storage.exists(handle_key(handle.id, "manifest.json")):
            # A DELETE ran meanwhile: do not bring the handle back.
            self.ctx.storage.delete(handle_key(handle.id, HANDLE))
            raise NotFound(f"no such bundle {handle.id}")
        return longer.summary()

    def delete(self, handle: Handle) -> None:
        """Revoke and delete a handle (live or expired): its state goes first, so every token dies at once
        everywhere; then all of it but the shared content, and this replica's caches."""
        storage, bid = self.ctx.storage, handle.id
        # First the ledger's tombstone: from here on no return of the handle can reserve, on any replica, whatever
        # handle copy its worker holds (service/quota.py); it stays for gc, which sweeps what a racing upload left.
        quota.bury(storage, bid, handle.tenant)
        storage.delete(handle_key(bid, HANDLE))
        self.access.forget(bid)
        storage.delete_prefix(return_prefix(bid))
        storage.delete_prefix(blob_prefix(bid))
        storage.delete_prefix(usage_prefix(handle.tenant, bid))
        webhook_outbox.forget(storage, bid)
        for key in index_keys(handle.to_json()):
            storage.delete(key)
        storage.delete_prefix(handle_prefix(bid))
        self.drop_cache(bid)

    def drop_cache(self, bid: str) -> None:
        """Remove this replica's derived copies of a handle (git repository, opened returns)."""
        shutil.rmtree(self.ctx.cache_dir / "git" / f"{bid}.git", ignore_errors=True)
        shutil.rmtree(self.ctx.cache_dir / "returns" / bid, ignore_errors=True)
