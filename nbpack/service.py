"""The service's operations over storage: store bundles, mint links, ingest and list returns.

Everything lives in storage (see design.md "Storage keys"); the local cache only holds derived
copies (git repositories, opened return zips), so any number of service processes sharing one
bucket behave as one service. ``server/`` calls these methods and only translates HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, cast
from urllib.parse import quote

from . import archive, gitrepo, links, webhook
from .bundle import MANIFEST, BuildSpec, build_bundle, check_bundle, open_bundle, with_returns
from .config import DEFAULT_TENANT, Config, hash_api_key
from .create import check_callback_url
from .errors import (
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InvalidBundle,
    InvalidInput,
    NbpackError,
    NotFound,
    TooLarge,
    Unauthorized,
)
from .hubs import Hub, load_esap_facilities, load_registry, rank_hubs
from .payloads import PayloadCatalog, load_catalog
from .returns import check_return, external_paths, open_return
from .storage import ObjectInfo, S3Storage, Storage, open_storage, put_headers
from .zipparts import PartsReader, Segment, iter_parts, open_segment, segment_sha256, split_zip

__all__ = ["Service", "Stored", "blob_key", "handle_key", "return_key", "content_key", "new_handle_id"]

log = logging.getLogger("nbpack.service")
# How long a presigned PUT URL for a returned output stays usable: long enough to start the upload. Each URL
# writes only its own upload key; ingest copies a verified upload to the blob's key, which no URL can write.
BLOB_URL_TTL = 900
EXTERNAL = "external.json"
HANDLE = "handle.json"
_INV_BASE = 10**13  # listing keys sort newest first: 13 digits of (this - created milliseconds)
_MAX_OWNER = 200
_MAX_PAGE = 500


class TooManyReturns(NbpackError):
    """A handle holds as many returns as the service allows (429: a later upload may fit after gc)."""

    code = "return_quota"
    http_status = 429


def new_handle_id() -> str:
    """A fresh random handle id: never derived from content, so no two creates share one."""
    return "h-" + secrets.token_hex(12)


def handle_key(hid: str, name: str) -> str:
    """Storage key of one of a handle's objects (handle.json, manifest.json, notebook.ipynb, head.bin, tail.bin)."""
    _check_id(hid, "h")
    return f"handles/{hid}/{name}"


def content_key(sha256: str) -> str:
    """Storage key of a shared, content-addressed zip member record."""
    _check_sha(sha256)
    return f"content/{sha256}"


def return_key(bid: str, rid: str, name: str) -> str:
    """Storage key of one of a return's objects (return.zip, manifest.json)."""
    _check_id(bid, "h")
    _check_id(rid, "r")
    return f"returns/{bid}/{rid}/{name}"


def blob_key(bid: str, sha256: str) -> str:
    """Storage key of an output uploaded straight to the object store (content-addressed per handle)."""
    _check_id(bid, "h")
    _check_sha(sha256)
    return f"blobs/{bid}/{sha256}"


def _check_sha(sha256: Any) -> None:
    if not (isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")


def _upload_prefix(bid: str, sha256: str) -> str:
    return blob_key(bid, sha256).replace(f"blobs/{bid}/", f"blobs/{bid}/uploads/", 1)


def _upload_key(bid: str, sha256: str, nonce: str) -> str:
    """Storage key of one presigned upload of an output; verified uploads are copied to ``blob_key``."""
    return f"{_upload_prefix(bid, sha256)}/{nonce}"


def _check_id(value: str, prefix: str) -> None:
    if not (
        isinstance(value, str)
        and len(value) == 26
        and value.startswith(prefix + "-")
        and all(c in "0123456789abcdef" for c in value[2:])
    ):
        raise NotFound(f"no such {'return' if prefix == 'r' else 'bundle'} {value[:40]!r}")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _owner_dir(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


@dataclass
class Stored:
    """The answer to a create: the handle's id, manifest (no token), links and lifetimes."""

    id: str
    manifest: dict[str, Any]
    links: dict[str, Any]
    created: bool
    expires: str
    handle_expires: str = ""
    owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The create call's JSON answer."""
        return {
            "id": self.id,
            "title": self.manifest["title"],
            "created": self.created,
            "expires": self.expires,
            "links": self.links,
            "content_id": self.manifest["id"],
            "owner": self.owner,
            "handle_expires": self.handle_expires,
        }


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the API shows it: the return token is never echoed back."""
    out = dict(manifest)
    if "returns" in out:
        out["returns"] = {k: v for k, v in out["returns"].items() if k != "token"}
    return out


def _sweep_spool(folder: Path, max_age: float = 86400) -> None:
    """Remove upload spools a killed process left behind; only old ones, as other workers share the folder."""
    cutoff = time.time() - max_age
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass


class Service:
    """The nbpack service over one storage; stateless beyond that storage and a derived cache."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage or open_storage(config.storage_url, endpoint_url=config.s3_endpoint)
        self.cache_dir = Path(config.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _sweep_spool(self.tmp_dir())
        self.hubs: list[Hub] = []
        if config.esap_facilities_file:
            self.hubs = load_esap_facilities(config.esap_facilities_file, config.hubs_file)
        elif config.hubs_file:
            self.hubs = load_registry(config.hubs_file)
        self.payloads: PayloadCatalog | None = load_catalog(config.payloads_file) if config.payloads_file else None
        self.notifier = webhook.Notifier(config.webhook_workers, config.webhook_queue, attempts=config.webhook_attempts)

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
        with tempfile.TemporaryDirectory(prefix="nbpack-create-", dir=self.tmp_dir()) as tmp:
            path = Path(tmp) / "bundle.zip"
            build_bundle(spec, path)
            return self.store(
                path, base_url, expires_in=expires_in, callback_url=callback_url, tenant=tenant, owner=owner
            )

    def tmp_dir(self) -> Path:
        """The spool folder for uploads and builds (local disk, never memory)."""
        path = self.cache_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def receive(self, stream: IO[bytes], limit: int) -> Path:
        """Spool an upload to a temp file on disk (never memory), refusing more than ``limit`` bytes."""
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=self.tmp_dir())
        total = 0
        try:
            with open(fd, "wb") as out:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
                    if total > limit:
                        raise TooLarge(f"upload is larger than the limit of {limit} bytes")
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _check_create(self, expires_in: int | None, callback_url: str | None, owner: str | None, tenant: str) -> None:
        self._expires_in(expires_in)
        if callback_url and not self.config.webhook_secret:
            raise InvalidInput("callback_url needs the service's NBPACK_WEBHOOK_SECRET to sign notifications")
        check_callback_url(callback_url, local_mode=self.config.local_mode)
        if owner is not None and (
            not isinstance(owner, str)
            or not owner.strip()
            or len(owner) > _MAX_OWNER
            or any(ord(c) < 32 for c in owner)
        ):
            raise InvalidInput(f"owner must be a user name of 1 to {_MAX_OWNER} printable characters")
        self._check_tenant_quota(tenant, 0)

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
        ttl = self._expires_in(expires_in)
        with open_bundle(zip_path) as bf:
            problems = check_bundle(bf)
            if problems:
                raise InvalidBundle(f"bundle is invalid: {problems[0]}")
            manifest = bf.manifest
            notebook = bf.read(manifest["payload"]["notebook"])
        self._check_tenant_quota(tenant, zip_path.stat().st_size)
        hid, nonce = new_handle_id(), secrets.token_urlsafe(12)
        created = _now()
        handle_expires = created + timedelta(seconds=self.config.handle_ttl)
        return_ttl = min(ttl, self.config.return_ttl)
        returns: dict[str, Any] = {
            "endpoint": f"{base_url}/api/v1/bundles/{hid}/returns",
            "token": links.make_token(self.config.secret_key, "return", hid, return_ttl, nonce),
            "expires": _iso(created + timedelta(seconds=return_ttl)),
        }
        if self.direct_uploads:
            returns["direct_threshold"] = self.config.direct_upload_threshold
        with tempfile.TemporaryDirectory(prefix="nbpack-store-", dir=self.tmp_dir()) as tmp:
            final = Path(tmp) / "bundle.zip"
            manifest = with_returns(zip_path, final, returns)
            parts = self._put_parts(hid, final)
            size = final.stat().st_size
            state = {
                "id": hid,
                "tenant": tenant,
                "owner": owner,
                "content_id": manifest["id"],
                "title": manifest["title"],
                "nonce": nonce,
                "created": _iso(created),
                "created_ms": int(time.time() * 1000),
                "expires": _iso(handle_expires),
                "callback_url": callback_url,
                "bytes": size,
                "parts": [[key, seg.size] for key, seg in parts],
            }
            self.storage.put_bytes(handle_key(hid, "notebook.ipynb"), notebook)
            self.storage.put_bytes(handle_key(hid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode())
            self.storage.put_bytes(self._usage_key(tenant, hid, "bundle", size), b"")
            for key in self._index_keys(state):
                self.storage.put_bytes(key, b"")
            # Written last: its presence is what makes the handle exist (and its tokens valid) for every process.
            self.storage.put_bytes(handle_key(hid, HANDLE), json.dumps(state, sort_keys=True).encode())
            # A gc that judged a reused content part unreferenced just before this handle appeared may have removed
            # it since: check each once more and put back what is gone.
            for key, seg in parts:
                if key.startswith("content/"):
                    self._ensure_content(key, final, seg, recheck=True)
        log.info("bundle stored", extra={"bundle": hid, "bytes": size})
        return Stored(
            hid,
            public_manifest(manifest),
            self.links(hid, base_url, expires_in, state=state),
            True,
            _iso(created + timedelta(seconds=ttl)),
            state["expires"],
            owner,
        )

    def _put_parts(self, hid: str, path: Path) -> list[tuple[str, Segment]]:
        """Store the zip at ``path`` as parts: its own nbpack.json record and central directory, shared records."""
        parts: list[tuple[str, Segment]] = []
        for seg in split_zip(path):
            if seg.name is None or seg.name == MANIFEST:
                key = handle_key(hid, "tail.bin" if seg.name is None else "head.bin")
                self._put_segment(key, path, seg)
            else:
                key = content_key(segment_sha256(path, seg))
                self._ensure_content(key, path, seg, recheck=False)
            parts.append((key, seg))
        return parts

    def _put_segment(self, key: str, path: Path, seg: Segment) -> None:
        with open_segment(path, seg) as f:
            self.storage.put_stream(key, f, seg.size)

    def _ensure_content(self, key: str, path: Path, seg: Segment, recheck: bool) -> None:
        try:
            # Touched, not just seen: gc removes only content nobody has used for its grace period.
            info = self.storage.stat(key) if recheck else self.storage.touch(key)
            if info.size == seg.size:
                return
        except NotFound:
            pass
        self._put_segment(key, path, seg)

    def _usage_key(self, tenant: str, hid: str, what: str, size: int) -> str:
        return f"tenants/{tenant}/usage/{hid}/{what}.{size}"

    def _index_keys(self, state: dict[str, Any]) -> list[str]:
        name = f"{_INV_BASE - state['created_ms']:013d}-{state['id']}"
        keys = [f"tenants/{state['tenant']}/index/{name}"]
        if state.get("owner"):
            keys.append(f"tenants/{state['tenant']}/owners/{_owner_dir(state['owner'])}/{name}")
        return keys

    def tenant_usage(self, tenant: str) -> int:
        """Bytes charged to a tenant: its handles' zip sizes and its returns' sizes."""
        total = 0
        for info in self.storage.list(f"tenants/{tenant}/usage/"):
            tail = info.key.rsplit(".", 1)[-1]
            total += int(tail) if tail.isdigit() else 0
        return total

    def _check_tenant_quota(self, tenant: str, adding: int) -> None:
        quota = self.config.tenant_quota_bytes
        if quota and self.tenant_usage(tenant) + adding > quota:
            raise TooLarge(
                f"this would take tenant {tenant} over its storage quota of {quota} bytes", code="tenant_quota"
            )

    def handle(self, bid: str, tenant: str | None = None) -> dict[str, Any]:
        """A live handle's state; NotFound when missing, expired, or (with ``tenant``) another tenant's."""
        _check_id(bid, "h")
        try:
            state = json.loads(self.storage.read_bytes(handle_key(bid, HANDLE)))
        except NotFound:
            raise NotFound(f"no such bundle {bid}") from None
        # Another tenant's handle answers exactly like a missing one.
        if (tenant is not None and state.get("tenant") != tenant) or _parse_iso(state["expires"]) <= _now():
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
        if cursor is not None and not re.fullmatch(r"\d{13}-h-[0-9a-f]{24}", cursor):
            raise InvalidInput("cursor is not one this service handed out")
        prefix = f"tenants/{tenant}/owners/{_owner_dir(owner)}/" if owner else f"tenants/{tenant}/index/"
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
        state["expires"] = _iso(_now() + timedelta(seconds=expires_in))
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
        for key in self._index_keys(state):
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
            "landing": f"{base_url}/b/{bid}?t={token}",
            "download": f"{base_url}/b/{bid}/download?t={token}",
            "git": self.git_url(state, base_url),
            "manifest": f"{base_url}/api/v1/bundles/{bid}",
        }
        if self.hubs:
            # ESAP facility names hold spaces and slashes ("SURF/ASTRON JupyterHub"): one encoded path segment.
            out["launch"] = {h.name: f"{base_url}/b/{bid}/launch/{quote(h.name, safe='')}?t={token}" for h in self.hubs}
        return out

    def git_url(self, state: dict[str, Any], base_url: str) -> str:
        """The handle's clone URL: its token has no expiry of its own and dies with the handle."""
        token = links.make_token(self.config.secret_key, "git", state["id"], None, state["nonce"])
        return f"{base_url}/git/{token}/{state['id']}.git"

    def ranking(self, bid: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """The hubs able to run a bundle, best first, each with its reasons."""
        return [r.to_json() for r in rank_hubs(self.hubs, self.manifest(bid, tenant))]

    def launch_url(self, bid: str, hub_name: str, state: dict[str, Any], base_url: str) -> str:
        """Where the launch button of ``hub_name`` sends a user for this handle."""
        manifest = self.manifest(bid)
        hub = next((h for h in self.hubs if h.name == hub_name), None)
        if hub is None:
            raise NotFound(f"no hub named {hub_name!r} in this service's registry")
        return links.launch_url(
            hub.url,
            hub.launch,
            self.git_url(state, base_url),
            ref="main",
            notebook=manifest["payload"]["notebook"],
            target_dir=links.target_dir_for(bid, manifest["title"]),
        )

    def git_repo(self, state: dict[str, Any]) -> Path:
        """The handle's git repository in the local cache, built on first use from its zip parts."""
        parts = [(k, n) for k, n in state["parts"]]
        return gitrepo.ensure_repo(
            lambda: cast(BinaryIO, PartsReader(parts, self.storage.open)),
            state["id"],
            self.cache_dir,
            content_id=state["content_id"],
        )

    # -- returns --------------------------------------------------------------------------------

    @property
    def direct_uploads(self) -> bool:
        """True when returned outputs may go straight to the object store (S3 backend, threshold set)."""
        return isinstance(self.storage, S3Storage) and self.config.direct_upload_threshold > 0

    def blob_upload(self, bid: str, doc: Any) -> dict[str, Any]:
        """Where to PUT one large output of a return (``{sha256, bytes}``), or that it is already stored."""
        self.manifest(bid)
        if not self.direct_uploads:
            raise Conflict(
                "this service stores returns in a local folder: send every output inside the return zip",
                code="direct_upload_unavailable",
            )
        if not isinstance(doc, dict):
            raise InvalidInput('send a JSON object {"sha256": hex, "bytes": n}')
        size = doc.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("bytes must be a whole number >= 0")
        if size > self.config.return_limits.max_member:
            raise TooLarge(
                f"an output of {size} bytes is larger than the limit of {self.config.return_limits.max_member} bytes"
            )
        sha256 = doc.get("sha256")
        final = blob_key(bid, sha256)  # type: ignore[arg-type]
        try:
            held = self.storage.stat(final).size
        except NotFound:
            held = None
        if held is not None:
            # Only the service writes a verified blob: it is never signed for upload again.
            if held != size:
                raise Conflict(
                    f"the stored output with sha256 {sha256} holds {held} bytes, not {size}", code="blob_mismatch"
                )
            return {"exists": True, "key": final}
        # Every upload gets its own key, bound to the declared length and sha256: it can overwrite nothing.
        key = _upload_key(bid, sha256, secrets.token_hex(12))  # type: ignore[arg-type]
        url = self.storage.presigned_put(key, BLOB_URL_TTL, size=size, sha256=sha256)
        if url is None:  # a backend without presigned URLs
            raise Conflict("this service's storage cannot hand out upload URLs", code="direct_upload_unavailable")
        return {
            "url": url,
            "method": "PUT",
            "headers": put_headers(size, sha256),  # type: ignore[arg-type]
            "key": key,
            "expires_in": BLOB_URL_TTL,
        }

    def _verify_blob(self, bid: str, path: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Find an external output's verified blob, or verify an upload of it and copy it into place.

        Uploads land in ``blobs/<bid>/uploads/<sha256>/<nonce>``; the first whose size and streamed sha256 match
        is copied to ``blobs/<bid>/<sha256>``, which no URL can write, and the uploads are removed.
        """
        final = blob_key(bid, entry["sha256"])
        try:
            held = self.storage.stat(final).size
        except NotFound:
            held = None
        if held is not None and held != entry["bytes"]:
            # The manifest is wrong, not the verified blob: it stays for the returns that use it.
            raise InvalidBundle(
                f"{path}: the stored blob {final} holds {held} bytes, the manifest says {entry['bytes']}",
                code="blob_mismatch",
            )
        record = self._hashed_blob(final, entry) if held is not None else None
        if record is not None:
            return record
        prefix = f"{_upload_prefix(bid, entry['sha256'])}/"
        uploads = list(self.storage.list(prefix))
        if not uploads and held is not None:
            raise ChecksumMismatch(
                f"{path}: blob {final} does not match its sha256; it was removed, upload it again", code="blob_mismatch"
            )
        if not uploads:
            raise InvalidBundle(
                f"{path} is marked external but its blob {final} was not uploaded (POST"
                " .../returns/blobs for an upload URL first)",
                code="blob_missing",
            )
        for info in uploads:
            if self._hashed_blob(info.key, entry) is not None:
                self.storage.copy(info.key, final)
                self.storage.delete_prefix(prefix)
                after = self.storage.stat(final)
                return {"key": final, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
        raise ChecksumMismatch(
            f"{path}: no upload of its blob matches its size and sha256; they were removed, upload it again",
            code="blob_mismatch",
        )

    def _hashed_blob(self, key: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        """The record of ``key`` when it holds exactly the entry's bytes; a wrong one is removed."""
        try:
            before = self.storage.stat(key)
        except NotFound:
            return None
        if before.size == entry["bytes"]:
            h = hashlib.sha256()
            for chunk in self.storage.iter_chunks(key, 1 << 20):
                h.update(chunk)
            after = self.storage.stat(key)
            if h.hexdigest() == entry["sha256"] and after.etag == before.etag and after.size == before.size:
                return {"key": key, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
        # A wrong blob would answer "exists" to every later upload of this output: remove it.
        self.storage.delete(key)
        return None

    def ingest(self, bid: str, stream: IO[bytes], state: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """Validate an uploaded return bundle and store it once; ``(summary, created)``.

        Outputs the manifest marks external and the zip leaves out must already sit in ``blobs/<bid>/<sha256>``;
        each is verified (size and a streamed sha256) before the return becomes visible. A return already stored
        answers before any quota is checked, so a retry never fails on a full quota.
        """
        state = state or self.handle(bid)
        limit = self.config.return_limits.max_total
        path = self.receive(stream, limit)
        try:
            with open_return(path, self.config.return_limits) as rf:
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
            if self.storage.exists(return_key(bid, rid, "manifest.json")):
                return self._summary(bid, manifest), False
            entries = {e["path"]: e for e in manifest["contents"]}
            size = path.stat().st_size + sum(entries[p]["bytes"] for p in absent)
            self._check_return_quota(bid, state, size)
            if absent:
                records = {p: self._verify_blob(bid, p, entries[p]) for p in sorted(absent)}
                # Before the zip: whichever zip ends up stored, a member it lacks can be found here.
                self.storage.put_bytes(return_key(bid, rid, EXTERNAL), json.dumps(records, sort_keys=True).encode())
            self.storage.put_file(return_key(bid, rid, "return.zip"), path)
            self.storage.put_bytes(self._usage_key(state["tenant"], bid, rid, size), b"")
            # Written last: a return becomes visible only once its zip is whole. Create-once, so of concurrent
            # uploads of one return exactly one is "created" (one 201, one webhook).
            if not self.storage.put_if_absent(
                return_key(bid, rid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode()
            ):
                return self._summary(bid, manifest), False
        finally:
            path.unlink(missing_ok=True)
        if not self.storage.exists(handle_key(bid, HANDLE)):
            # Deleted while this upload ran: leave nothing behind that no handle owns.
            self.storage.delete_prefix(f"returns/{bid}/{rid}/")
            raise NotFound(f"no such bundle {bid}")
        log.info("return ingested", extra={"bundle": bid, "return": rid})
        callback, secret = state.get("callback_url"), self.config.webhook_secret
        if callback and secret:
            self.notifier.submit(
                callback,
                {"event": "return.created", "bundle_id": bid, "return_id": rid, "status": manifest["status"]},
                secret,
            )
        return self._summary(bid, manifest), True

    def _check_return_quota(self, bid: str, state: dict[str, Any], adding: int) -> None:
        """Per-handle count and bytes, then the tenant's bytes; raises before anything is stored."""
        count, used = 0, 0
        for prefix in (f"returns/{bid}/", f"blobs/{bid}/"):
            for info in self.storage.list(prefix):
                used += info.size
                count += info.key.endswith("/manifest.json")
        if count >= self.config.max_returns_per_bundle:
            raise TooManyReturns(f"bundle {bid} already holds {count} returns, the limit of this service")
        if used + adding > self.config.max_return_bytes_per_bundle:
            raise TooLarge(
                f"bundle {bid} would hold more than {self.config.max_return_bytes_per_bundle} bytes of returns",
                code="return_bytes_quota",
            )
        self._check_tenant_quota(state["tenant"], adding)

    def _summary(self, bid: str, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": m["id"],
            "bundle_id": bid,
            "status": m["status"],
            "started": m["started"],
            "ended": m["ended"],
            "outputs": len(m["outputs"]),
            "values": [v["name"] for v in m["values"]],
            "error": m.get("error"),
        }

    def list_returns(self, bid: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """The returns of a handle that are fully ingested, oldest first."""
        self.handle(bid, tenant)
        out = []
        for info in self.storage.list(f"returns/{bid}/"):
            if info.key.endswith("/manifest.json"):
                m = json.loads(self.storage.read_bytes(info.key))
                summary = self._summary(bid, m)
                summary["received"] = _iso(info.modified) if info.modified else None
                out.append(summary)
        return sorted(out, key=lambda s: (s.get("received") or "", s["id"]))

    def return_manifest(self, bid: str, rid: str, tenant: str | None = None) -> dict[str, Any]:
        """One return's manifest."""
        self.handle(bid, tenant)
        try:
            return json.loads(self.storage.read_bytes(return_key(bid, rid, "manifest.json")))
        except NotFound:
            raise NotFound(f"no return {rid} for bundle {bid}") from None

    def return_object(self, bid: str, rid: str, tenant: str | None = None) -> ObjectInfo:
        """The return zip's object info."""
        self.return_manifest(bid, rid, tenant)
        return self.storage.stat(return_key(bid, rid, "return.zip"))

    def return_chunks(self, bid: str, rid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The return zip's bytes, streamed from storage."""
        return self.storage.iter_chunks(return_key(bid, rid, "return.zip"), 1 << 20, start, end)

    def _local_return(self, bid: str, rid: str) -> Path:
        # Returns are immutable, so a local copy is a safe cache for random access into the zip.
        path = self.cache_dir / "returns" / bid / f"{rid}.zip"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.storage.download_to(return_key(bid, rid, "return.zip"), path)
        return path

    def return_member(self, bid: str, rid: str, name: str, tenant: str | None = None) -> tuple[int, BinaryIO]:
        """One file of a return bundle: (size, stream), from the zip or, for an external output, its blob."""
        manifest = self.return_manifest(bid, rid, tenant)
        listed = {e["path"] for e in manifest["contents"]} | {"nbpack-return.json", "ro-crate-metadata.json"}
        if name not in listed:
            raise NotFound(f"return {rid} has no file {name!r}")
        zf = archive.open_zip(self._local_return(bid, rid), self.config.return_limits)
        if name in zf.namelist():
            info = zf.getinfo(name)
            return info.file_size, cast(BinaryIO, _ClosingMember(zf, zf.open(info)))
        zf.close()
        return self._external_member(bid, rid, name)

    def _external_member(self, bid: str, rid: str, name: str) -> tuple[int, BinaryIO]:
        try:
            record = json.loads(self.storage.read_bytes(return_key(bid, rid, EXTERNAL)))[name]
        except (NotFound, KeyError):
            raise NotFound(f"return {rid} has no stored copy of {name!r}") from None
        info = self.storage.stat(record["key"])
        # A presigned URL handed out before ingest could still overwrite the blob: never serve changed bytes.
        if info.size != record["bytes"] or (record.get("etag") and info.etag != record["etag"]):
            raise Conflict(f"{name}: its blob changed after the return was ingested", code="blob_changed")
        return info.size, self.storage.open(record["key"])

    def return_notebook(self, bid: str, rid: str, tenant: str | None = None) -> bytes:
        """The executed notebook of a return."""
        manifest = self.return_manifest(bid, rid, tenant)
        with archive.open_zip(self._local_return(bid, rid), self.config.return_limits) as zf:
            return archive.read_member(zf, manifest["notebook"])

    def ping(self) -> None:
        """Raise ``StorageError`` when storage is unreachable."""
        self.storage.ping()


class _ClosingMember:
    """A zip member stream that also closes its zip."""

    def __init__(self, zf: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.zf, self.member = zf, member

    def read(self, n: int = -1) -> bytes:
        return self.member.read(n)

    def close(self) -> None:
        self.member.close()
        self.zf.close()
