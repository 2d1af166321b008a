"""The service's operations over storage: store bundles, mint links, ingest and list returns.

Everything lives in storage (see design.md "Storage keys"); the local cache only holds derived
copies (git repositories, opened return zips), so any number of service processes sharing one
bucket behave as one service. ``server/`` calls these methods and only translates HTTP.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from nbpack.bundle import lone
from nbpack.bundle.build import BuildSpec, build_bundle, check_bundle, open_bundle, with_returns
from nbpack.bundle.payloads import PayloadCatalog, load_catalog
from nbpack.bundle.remote import Remote
from nbpack.clock import iso, now, parse_iso
from nbpack.config import DEFAULT_TENANT, Config, hash_api_key
from nbpack.errors import Forbidden, InvalidBundle, InvalidInput, NotFound, TooLarge, Unauthorized
from nbpack.hub import git as gitrepo
from nbpack.hub import links
from nbpack.hub.launch import hub_launch_url
from nbpack.hub.registry import Hub, load_esap_facilities, load_registry, rank_hubs
from nbpack.ids import HANDLE as HANDLE_ID
from nbpack.ids import check_id, new_handle_id
from nbpack.ids import pattern as id_pattern
from nbpack.service import returns as returnstore
from nbpack.service.answers import Stored, public_manifest
from nbpack.service.create import check_callback_url
from nbpack.store import blobs, members, spool
from nbpack.store import parts as partstore
from nbpack.store.backends import ObjectInfo, Storage, open_storage
from nbpack.store.cache import CachedStorage
from nbpack.store.keys import (
    HANDLE,
    blob_key,
    content_key,
    handle_key,
    immutable,
    index_keys,
    owner_dir,
    return_key,
    usage_key,
)
from nbpack.store.zipparts import RangedParts, iter_parts
from nbpack.webhooks import outbox as webhook_outbox
from nbpack.webhooks.dispatch import Dispatcher

__all__ = ["Service", "Stored", "blob_key", "handle_key", "return_key", "content_key", "new_handle_id"]

log = logging.getLogger("nbpack.service.core")
_MAX_OWNER = 200
_MAX_PAGE = 500


@dataclass(frozen=True)
class _NewHandle:
    """What a create decides before its bundle is stored: the handle's id, nonce, time, link lifetime, returns."""

    id: str
    nonce: str
    created: datetime
    ttl: int
    returns: dict[str, Any]


class Service:
    """The nbpack service over one storage; stateless beyond that storage and a derived cache."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        backend = storage or open_storage(config.storage_url, endpoint_url=config.s3_endpoint, region=config.s3_region)
        # Manifests, notebooks and zip parts never change once written: the worker keeps the small ones in memory.
        self.storage: Storage = CachedStorage(backend, immutable)
        self.cache_dir = Path(config.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        spool.sweep_old(self.tmp_dir())
        # A replica or worker killed mid-build leaves a temp repo and a whole temp zip; its restart clears them.
        gitrepo.sweep_leftovers(self.cache_dir)
        self.hubs: list[Hub] = []
        if config.esap_facilities_file:
            self.hubs = load_esap_facilities(config.esap_facilities_file, config.hubs_file)
        elif config.hubs_file:
            self.hubs = load_registry(config.hubs_file)
        self.payloads: PayloadCatalog | None = load_catalog(config.payloads_file) if config.payloads_file else None
        # Sends the webhook outbox kept in storage (started by the server, or by the first ingest that queues one).
        self.webhooks = Dispatcher(self.storage, config)
        self._directories = members.Directories(self._read_range)

    # -- authentication -------------------------------------------------------------------------

    def check_api_key(self, key: str | None) -> str:
        """The tenant of a configured API key (compared in constant time against stored hashes), else 401."""
        if not key:
            raise Unauthorized("an API key is required (header X-API-Key or Authorization: Bearer)")
        given = hash_api_key(key)
        found = None
        for stored in self.config.api_key_hashes:
            if hmac.compare_digest(given, stored):
                found = stored
        if found is None:
            raise Unauthorized("the API key is not valid")
        return self.config.api_key_tenants.get(found, DEFAULT_TENANT)

    def _check_token(self, bid: str, token: str | None, scope: str, missing: str) -> dict[str, Any]:
        if not token:
            raise Forbidden(missing, code="token_missing")
        claims = links.check_token(self.config.secret_key, token, scope, bid)
        try:
            state = self.handle(bid)
        except NotFound:
            raise Forbidden("this link was revoked or its bundle has expired", code="token_revoked") from None
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], state["nonce"]):
            raise Forbidden("this link was revoked", code="token_revoked")
        return state

    def check_read(self, bid: str, token: str | None) -> dict[str, Any]:
        """A read link token of this live handle, else 403; the handle's state."""
        return self._check_token(bid, token, "read", "this link needs its token")

    def check_git(self, bid: str, token: str | None) -> dict[str, Any]:
        """A git token of this live handle, else 403; the handle's state."""
        return self._check_token(bid, token, "git", "this repository URL needs its token")

    def check_return_token(self, bid: str, token: str | None) -> dict[str, Any]:
        """A return token of this live handle, else 403; the handle's state."""
        return self._check_token(bid, token, "return", "uploading a return needs the bundle's return token")

    # -- handles --------------------------------------------------------------------------------

    def _expires_in(self, requested: int | None) -> int:
        if requested is None:
            return self.config.link_ttl
        if (
            isinstance(requested, bool)
            or not isinstance(requested, int)
            or requested < 60
            or requested > self.config.max_link_ttl
        ):
            raise InvalidInput(f"expires_in must be between 60 and {self.config.max_link_ttl} seconds")
        return requested

    def create(
        self,
        spec: BuildSpec,
        base_url: str,
        *,
        expires_in: int | None = None,
        callback_url: str | None = None,
        tenant: str = DEFAULT_TENANT,
        owner: str | None = None,
    ) -> Stored:
        """Build a bundle from ``spec`` and store it as a new handle (see :meth:`store`)."""
        self._check_create(expires_in, callback_url, owner, tenant)
        new = self._new_handle(base_url, expires_in)
        with tempfile.TemporaryDirectory(prefix="nbpack-create-", dir=self.tmp_dir()) as tmp:
            path = Path(tmp) / "bundle.zip"
            # The returns section goes in with the build: the zip is written once, never rewritten to add it.
            build_bundle(spec, path, returns=new.returns)
            return self._store(path, base_url, new, expires_in, callback_url, tenant, owner, add_returns=False)

    def tmp_dir(self) -> Path:
        """The spool folder for uploads and builds (local disk, never memory)."""
        path = self.cache_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def receive(self, stream: IO[bytes], limit: int) -> Path:
        """Spool an upload to a temp file on disk (never memory), refusing more than ``limit`` bytes."""
        return spool.receive(stream, limit, self.tmp_dir())

    def _check_create(self, expires_in: int | None, callback_url: str | None, owner: str | None, tenant: str) -> None:
        self._expires_in(expires_in)
        if callback_url and not self.config.webhook_secrets.get(tenant):
            raise InvalidInput(
                "callback_url needs a webhook secret for this tenant (NBPACK_WEBHOOK_SECRETS) to sign notifications"
            )
        check_callback_url(callback_url, self.config.webhook_allow.get(tenant), local_mode=self.config.local_mode)
        if owner is not None and (
            not isinstance(owner, str)
            or not owner.strip()
            or len(owner) > _MAX_OWNER
            or any(ord(c) < 32 for c in owner)
        ):
            raise InvalidInput(f"owner must be a user name of 1 to {_MAX_OWNER} printable characters")
        self.check_tenant_quota(tenant, 0)

    def store(
        self,
        zip_path: Path,
        base_url: str,
        *,
        expires_in: int | None = None,
        callback_url: str | None = None,
        tenant: str = DEFAULT_TENANT,
        owner: str | None = None,
    ) -> Stored:
        """Store a built bundle zip (checked first) as a new handle; its heavy members are shared by content."""
        self._check_create(expires_in, callback_url, owner, tenant)
        new = self._new_handle(base_url, expires_in)
        return self._store(zip_path, base_url, new, expires_in, callback_url, tenant, owner, add_returns=True)

    def _new_handle(self, base_url: str, expires_in: int | None) -> _NewHandle:
        """A fresh handle id, nonce and creation time, and the returns section its bundle carries."""
        ttl = self._expires_in(expires_in)
        hid, nonce = new_handle_id(), secrets.token_urlsafe(12)
        created = now()
        return_ttl = min(ttl, self.config.return_ttl)
        returns: dict[str, Any] = {
            "endpoint": self.url(base_url, "returns", hid),
            "token": links.make_token(self.config.secret_key, "return", hid, return_ttl, nonce),
            "expires": iso(created + timedelta(seconds=return_ttl)),
        }
        if self.direct_uploads:
            returns["direct_threshold"] = self.config.direct_upload_threshold
        return _NewHandle(hid, nonce, created, ttl, returns)

    def _store(
        self,
        zip_path: Path,
        base_url: str,
        new: _NewHandle,
        expires_in: int | None,
        callback_url: str | None,
        tenant: str,
        owner: str | None,
        *,
        add_returns: bool,
    ) -> Stored:
        with open_bundle(zip_path) as bf:
            problems = check_bundle(bf)
            if problems:
                raise InvalidBundle(f"bundle is invalid: {problems[0]}")
            manifest = bf.manifest
            notebook = bf.read(manifest["payload"]["notebook"])
        self.check_tenant_quota(tenant, zip_path.stat().st_size)
        hid, nonce, created, ttl = new.id, new.nonce, new.created, new.ttl
        handle_expires = created + timedelta(seconds=self.config.handle_ttl)
        with tempfile.TemporaryDirectory(prefix="nbpack-store-", dir=self.tmp_dir()) as tmp:
            if add_returns:
                # A pushed zip: its copy gets the returns section (the id does not cover it).
                final = Path(tmp) / "bundle.zip"
                manifest = with_returns(zip_path, final, new.returns)
            else:
                final = zip_path
            parts = partstore.put_parts(self.storage, hid, final)
            size = final.stat().st_size
            state = {
                "id": hid,
                "tenant": tenant,
                "owner": owner,
                "content_id": manifest["id"],
                "title": manifest["title"],
                "nonce": nonce,
                "created": iso(created),
                "created_ms": int(time.time() * 1000),
                "expires": iso(handle_expires),
                "callback_url": callback_url,
                "bytes": size,
                "parts": [[key, seg.size] for key, seg in parts],
            }
            self.storage.put_bytes(handle_key(hid, "notebook.ipynb"), notebook)
            self.storage.put_bytes(handle_key(hid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode())
            self.storage.put_bytes(usage_key(tenant, hid, "bundle", size), b"")
            for key in index_keys(state):
                self.storage.put_bytes(key, b"")
            # Written last: its presence is what makes the handle exist (and its tokens valid) for every process.
            self.storage.put_bytes(handle_key(hid, HANDLE), json.dumps(state, sort_keys=True).encode())
            # A gc that judged a reused content part unreferenced just before this handle appeared may have removed
            # it since: check each once more and put back what is gone.
            for key, seg in parts:
                if key.startswith("content/"):
                    partstore.ensure_content(self.storage, key, final, seg, recheck=True)
        log.info("bundle stored", extra={"bundle": hid, "bytes": size})
        return Stored(
            hid,
            public_manifest(manifest),
            self.links(hid, base_url, expires_in, state=state),
            True,
            iso(created + timedelta(seconds=ttl)),
            state["expires"],
            owner,
        )

    def tenant_usage(self, tenant: str) -> int:
        """Bytes charged to a tenant: its handles' zip sizes and its returns' sizes."""
        total = 0
        for info in self.storage.list(f"tenants/{tenant}/usage/"):
            tail = info.key.rsplit(".", 1)[-1]
            total += int(tail) if tail.isdigit() else 0
        return total

    def check_tenant_quota(self, tenant: str, adding: int) -> None:
        """413 when adding ``adding`` bytes would take the tenant over its quota."""
        quota = self.config.tenant_quota_bytes
        if quota and self.tenant_usage(tenant) + adding > quota:
            raise TooLarge(
                f"this would take tenant {tenant} over its storage quota of {quota} bytes", code="tenant_quota"
            )

    def handle(self, bid: str, tenant: str | None = None) -> dict[str, Any]:
        """A live handle's state; NotFound when missing, expired, or (with ``tenant``) another tenant's."""
        check_id(bid, HANDLE_ID)
        try:
            state = json.loads(self.storage.read_bytes(handle_key(bid, HANDLE)))
        except NotFound:
            raise NotFound(f"no such bundle {bid}") from None
        # Another tenant's handle answers exactly like a missing one.
        if (tenant is not None and state.get("tenant") != tenant) or parse_iso(state["expires"]) <= now():
            raise NotFound(f"no such bundle {bid}")
        return state

    def manifest(self, bid: str, tenant: str | None = None) -> dict[str, Any]:
        """A live handle's manifest, without its return token."""
        self.handle(bid, tenant)
        try:
            return public_manifest(json.loads(self.storage.read_bytes(handle_key(bid, "manifest.json"))))
        except NotFound:
            raise NotFound(f"no such bundle {bid}") from None

    def describe(self, bid: str, tenant: str | None = None) -> dict[str, Any]:
        """The API view of a handle: its manifest plus ``handle`` (id, owner, created, expires, bytes)."""
        state = self.handle(bid, tenant)
        out = self.manifest(bid, tenant)
        out["handle"] = self._handle_summary(state)
        return out

    @staticmethod
    def _handle_summary(state: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": state["id"],
            "content_id": state["content_id"],
            "title": state["title"],
            "owner": state.get("owner"),
            "created": state["created"],
            "expires": state["expires"],
            "bytes": state["bytes"],
        }

    def list_handles(
        self, tenant: str, owner: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """A tenant's live handles, newest first, ``limit`` at a time; ``next`` is the cursor of the next page."""
        if not 1 <= limit <= _MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {_MAX_PAGE}")
        if cursor is not None and not re.fullmatch(r"\d{13}-" + id_pattern(HANDLE_ID), cursor):
            raise InvalidInput("cursor is not one this service handed out")
        prefix = f"tenants/{tenant}/owners/{owner_dir(owner)}/" if owner else f"tenants/{tenant}/index/"
        found: list[dict[str, Any]] = []
        nxt = None
        for info in self.storage.list(prefix):
            name = info.key[len(prefix) :]
            if cursor is not None and name <= cursor:
                continue
            try:
                state = self.handle(name[14:], tenant)
            except NotFound:
                continue  # deleted or expired since: gc removes its markers
            if len(found) == limit:
                nxt = found[-1]["cursor"]
                break
            found.append({**self._handle_summary(state), "cursor": name})
        return {"bundles": [{k: v for k, v in f.items() if k != "cursor"} for f in found], "next": nxt}

    def extend(self, bid: str, tenant: str, expires_in: Any) -> dict[str, Any]:
        """Set a handle to expire ``expires_in`` seconds from now (its tenant's call); the new summary."""
        state = self.handle(bid, tenant)
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 60 <= expires_in <= self.config.max_handle_ttl
        ):
            raise InvalidInput(f"expires_in must be between 60 and {self.config.max_handle_ttl} seconds")
        state["expires"] = iso(now() + timedelta(seconds=expires_in))
        self.storage.put_bytes(handle_key(bid, HANDLE), json.dumps(state, sort_keys=True).encode())
        if not self.storage.exists(handle_key(bid, "manifest.json")):
            # A DELETE ran meanwhile: do not bring the handle back.
            self.storage.delete(handle_key(bid, HANDLE))
            raise NotFound(f"no such bundle {bid}")
        return self._handle_summary(state)

    def notebook(self, bid: str, tenant: str | None = None) -> bytes:
        """The bundle's notebook as built (for previews)."""
        self.handle(bid, tenant)
        return self.storage.read_bytes(handle_key(bid, "notebook.ipynb"))

    def delete(self, bid: str, tenant: str | None = None) -> None:
        """Revoke and delete a handle: its state goes first, so every token dies at once everywhere."""
        state = self.handle(bid, tenant)
        self.purge(state)

    def purge(self, state: dict[str, Any]) -> None:
        """Remove everything of a handle (live or expired) but the shared content, and this replica's caches."""
        bid = state["id"]
        self.storage.delete(handle_key(bid, HANDLE))
        self.storage.delete_prefix(f"returns/{bid}/")
        self.storage.delete_prefix(f"blobs/{bid}/")
        self.storage.delete_prefix(f"tenants/{state['tenant']}/usage/{bid}/")
        webhook_outbox.forget(self.storage, bid)
        for key in index_keys(state):
            self.storage.delete(key)
        self.storage.delete_prefix(f"handles/{bid}/")
        self.drop_cache(bid)

    def drop_cache(self, bid: str) -> None:
        """Remove this replica's derived copies of a handle (git repository, opened returns)."""
        shutil.rmtree(self.cache_dir / "git" / f"{bid}.git", ignore_errors=True)
        shutil.rmtree(self.cache_dir / "returns" / bid, ignore_errors=True)

    def bundle_size(self, bid: str, tenant: str | None = None, state: dict[str, Any] | None = None) -> int:
        """The handle's zip size in bytes (Content-Length and ranges)."""
        state = state or self.handle(bid, tenant)
        return sum(size for _, size in state["parts"])

    def bundle_chunks(self, state: dict[str, Any], start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The handle's zip bytes, streamed part after part from storage."""
        return iter_parts(
            [(k, n) for k, n in state["parts"]],
            lambda key, s, e: self.storage.iter_chunks(key, 1 << 20, s, e),
            start,
            end,
        )

    def links(
        self,
        bid: str,
        base_url: str,
        expires_in: int | None = None,
        *,
        tenant: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fresh signed links of a handle: landing, download, git (as long-lived as the handle), launch per hub."""
        ttl = self._expires_in(expires_in)
        state = state or self.handle(bid, tenant)
        token = links.make_token(self.config.secret_key, "read", bid, ttl, state["nonce"])
        out: dict[str, Any] = {
            "landing": self.url(base_url, "landing", bid, token),
            "download": self.url(base_url, "download", bid, token),
            "git": self.git_url(state, base_url),
            "files": self.files_url(state, base_url),
            "manifest": self.url(base_url, "manifest", bid),
            "notebook": self.notebook_url(state, base_url),
        }
        if self.hubs:
            out["launch"] = {h.name: self.url(base_url, "launch", bid, token, hub=h.name) for h in self.hubs}
        return out

    @staticmethod
    def url(base_url: str, kind: str, bid: str, token: str | None = None, *, hub: str = "", rid: str = "") -> str:
        """A public link of a handle (see ``links.public_url``, the one place that knows the URL layout)."""
        return links.public_url(base_url, kind, bid, token, hub=hub, rid=rid)

    def git_url(self, state: dict[str, Any], base_url: str) -> str:
        """The handle's clone URL: its token has no expiry of its own and dies with the handle."""
        token = links.make_token(self.config.secret_key, "git", state["id"], None, state["nonce"])
        return self.url(base_url, "git", state["id"], token)

    def notebook_url(self, state: dict[str, Any], base_url: str) -> str:
        """The handle's notebook alone (``links.notebook``): git token in the path, ending in the notebook's name."""
        token = links.make_token(self.config.secret_key, "git", state["id"], None, state["nonce"])
        name = self.manifest(state["id"])["payload"]["notebook"]
        return links.public_url(base_url, "notebook", state["id"], token, path=name)

    def served_notebook(self, state: dict[str, Any], base_url: str) -> tuple[str, bytes]:
        """(name, bytes) of the notebook ``links.notebook`` serves: the stored one plus where its bundle is."""
        manifest = self.manifest(state["id"])
        stored = self.notebook(state["id"])
        return manifest["payload"]["notebook"], lone.served_notebook(stored, manifest, self.files_url(state, base_url))

    def ranking(self, bid: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """The hubs able to run a bundle, best first, each with its reasons."""
        return [r.to_json() for r in rank_hubs(self.hubs, self.manifest(bid, tenant))]

    def launch_url(self, bid: str, hub_name: str, state: dict[str, Any], base_url: str, user: str = "") -> str:
        """Where the launch button of ``hub_name`` sends a user for this handle (``launch.hub_launch_url``)."""
        hub = next((h for h in self.hubs if h.name == hub_name), None)
        if hub is None:
            raise NotFound(f"no hub named {hub_name!r} in this service's registry")
        git_url, notebook_url = self.git_url(state, base_url), self.notebook_url(state, base_url)
        return hub_launch_url(hub, bid, self.manifest(bid), git_url=git_url, notebook_url=notebook_url, user=user)

    def git_repo(self, state: dict[str, Any], base_url: str) -> Path:
        """The handle's git repository in the local cache, built on first use from the zip parts its tree needs.

        Catalogs of ``lazy_min_bytes`` or more stay out; ``nbpack.remote.json`` names them and the files URL.
        """
        return gitrepo.ensure_repo(
            lambda: self.open_parts(state),
            state["id"],
            self.cache_dir,
            content_id=state["content_id"],
            remote=Remote(self.files_url(state, base_url), self.config.lazy_min_bytes),
        )

    # -- members: one file of a handle, by the git capability (the files endpoint) ------------------

    def files_url(self, state: dict[str, Any], base_url: str) -> str:
        """The prefix under which every member of the handle is read (ends in ``/``); its token is the git one."""
        token = links.make_token(self.config.secret_key, "git", state["id"], None, state["nonce"])
        return self.url(base_url, "files", state["id"], token)

    def open_parts(self, state: dict[str, Any]) -> BinaryIO:
        """The handle's zip as a seekable reader that fetches only the byte ranges read (zipfile can open it)."""
        parts = [(k, n) for k, n in state["parts"]]
        return cast(BinaryIO, RangedParts(parts, self._read_range))

    def _read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        return self.storage.iter_chunks(key, 1 << 20, start, end)

    def member(self, state: dict[str, Any], path: str) -> members.Member:
        """One member of the handle's bundle by its path (NotFound when it has none), its data located."""

        def digests() -> dict[str, str]:
            manifest = json.loads(self.storage.read_bytes(handle_key(state["id"], "manifest.json")))
            return {e["path"]: e["sha256"] for e in manifest.get("contents", []) if "sha256" in e}

        return self._directories.member(state["id"], state["parts"], lambda: self.open_parts(state), digests, path)

    def member_chunks(self, member: members.Member, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` of a stored member (one ranged read), or a deflated member whole."""
        return members.member_chunks(member, self._read_range, start, end)

    # -- returns --------------------------------------------------------------------------------

    @property
    def direct_uploads(self) -> bool:
        """True when returned outputs may go straight to the object store (presigned PUTs, threshold set)."""
        if self.config.direct_upload_threshold <= 0:
            return False
        # Asked of the backend, not its class: a backend says whether it signs PUT URLs (S3 does, a folder cannot).
        return self.storage.supports_presigned_put

    def blob_upload(self, bid: str, doc: Any) -> dict[str, Any]:
        """Where to PUT one large output of a return (``{sha256, bytes}``), or that it is already stored."""
        self.manifest(bid)
        return blobs.upload_url(self.storage, self.config, self.direct_uploads, bid, doc)

    def ingest(self, bid: str, stream: IO[bytes], state: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """Validate an uploaded return bundle and store it once; ``(summary, created)`` (see returnstore.ingest)."""
        return returnstore.ingest(self, bid, stream, state)

    def list_returns(self, bid: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """The returns of a handle that are fully ingested, oldest first."""
        return returnstore.list_returns(self, bid, tenant)

    def return_manifest(self, bid: str, rid: str, tenant: str | None = None) -> dict[str, Any]:
        """One return's manifest."""
        return returnstore.return_manifest(self, bid, rid, tenant)

    def return_object(self, bid: str, rid: str, tenant: str | None = None) -> ObjectInfo:
        """The return zip's object info."""
        return returnstore.return_object(self, bid, rid, tenant)

    def return_chunks(self, bid: str, rid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The return zip's bytes, streamed from storage."""
        return returnstore.return_chunks(self, bid, rid, start, end)

    def return_member(self, bid: str, rid: str, name: str, tenant: str | None = None) -> tuple[int, BinaryIO]:
        """One file of a return bundle: (size, stream), from the zip or, for an external output, its blob."""
        return returnstore.return_member(self, bid, rid, name, tenant)

    def return_notebook(self, bid: str, rid: str, tenant: str | None = None) -> bytes:
        """The executed notebook of a return."""
        return returnstore.return_notebook(self, bid, rid, tenant)

    def ping(self) -> None:
        """Raise ``StorageError`` when storage is unreachable."""
        self.storage.ping()
