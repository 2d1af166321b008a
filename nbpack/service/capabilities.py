"""Who may do what: API keys (a tenant's), and the scoped capability tokens of one handle with the links that
carry them.

Each token names one handle and carries its nonce; it is checked against the handle read for the request, so a
deleted handle's tokens all die at once. ``read`` tokens expire (landing page, download, launch); ``git`` tokens
live as long as the handle (nbgitpuller re-pulls from the URL it cloned; the files and lone-notebook URLs share
it); ``return`` tokens go into the bundle's returns section.

A return upload's handle comes from a per-worker memory (``RETURN_TTL``, never past the handle's expiry): the check
that decides whether a return may still be stored is the reservation in the handle's ledger, which a DELETE buries
before anything else (service/quota.py), so revocation stays immediate for returns without a ``handle.json`` read per
upload. A ``fresh`` check (the blob-upload URL, which outlives the request) reads it.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from nbpack.clock import iso
from nbpack.config import DEFAULT_TENANT, hash_api_key
from nbpack.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from nbpack.hub import links
from nbpack.hub.registry import Hub
from nbpack.service.context import Context
from nbpack.service.handle import Handle, load
from nbpack.service.recent import RecentHandles

# Seconds a worker answers return uploads from its copy of a handle: bounds how long a shortened expiry (extend) is
# not seen; a delete is seen at once (the ledger's tombstone, and this replica's revoked markers).
RETURN_TTL = 30.0

__all__ = ["Capabilities", "url"]

_MISSING = {
    "read": "this link needs its token",
    "git": "this repository URL needs its token",
    "return": "uploading a return needs the bundle's return token",
}


def url(base_url: str, kind: str, bid: str, token: str | None = None, *, hub: str = "", rid: str = "") -> str:
    """A public link of a handle (see ``links.public_url``, the one place that knows the URL layout)."""
    return links.public_url(base_url, kind, bid, token, hub=hub, rid=rid)


class Capabilities:
    """API keys and handle tokens: checked (each check reads the handle once) and minted into links."""

    def __init__(self, ctx: Context, hubs: list[Hub]) -> None:
        self.ctx = ctx
        self.hubs = hubs
        # The git scope is called in bursts (a lazy read's Range requests): its handle is remembered for a second.
        self.recent = RecentHandles(ctx.cache_dir)
        # Return uploads: their reservation in the ledger is the authoritative check (module docstring).
        self.returning = RecentHandles(ctx.cache_dir, RETURN_TTL)

    def forget(self, bid: str) -> None:
        """The handle is being deleted: no worker of this replica answers from its memory of it again."""
        self.recent.forget(bid)
        self.returning.forget(bid)

    def check_api_key(self, key: str | None) -> str:
        """The tenant of a configured API key (compared in constant time against stored hashes), else 401."""
        if not key:
            raise Unauthorized("an API key is required (header X-API-Key or Authorization: Bearer)")
        given = hash_api_key(key)
        found = None
        for stored in self.ctx.config.api_key_hashes:
            if hmac.compare_digest(given, stored):
                found = stored
        if found is None:
            raise Unauthorized("the API key is not valid")
        return self.ctx.config.api_key_tenants.get(found, DEFAULT_TENANT)

    def check(self, bid: str, token: str | None, scope: str, *, fresh: bool = False) -> Handle:
        """The live handle a ``scope`` token (read, git, return) grants, read once (a git token's: at most once a
        second per worker, see ``recent``; a return token's: see ``returning``; unless ``fresh``: a signed URL
        outlives the check); 403 otherwise."""
        if not token:
            raise Forbidden(_MISSING[scope], code="token_missing")
        claims = links.check_token(self.ctx.config.secret_key, token, scope, bid)
        try:
            if scope == "git" and not fresh:
                handle = self.recent.get(bid, lambda: load(self.ctx.storage, bid))
            elif scope == "return" and not fresh:
                handle = self.returning.get(bid, lambda: load(self.ctx.storage, bid))
            else:
                handle = load(self.ctx.storage, bid)
        except NotFound:
            raise Forbidden("this link was revoked or its bundle has expired", code="token_revoked") from None
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], handle.nonce):
            raise Forbidden("this link was revoked", code="token_revoked")
        return handle

    def expires_in(self, requested: int | None) -> int:
        """A link lifetime asked for (the configured one when None); 400 outside 60 s .. the configured maximum."""
        if requested is None:
            return self.ctx.config.link_ttl
        if (
            isinstance(requested, bool)
            or not isinstance(requested, int)
            or requested < 60
            or requested > self.ctx.config.max_link_ttl
        ):
            raise InvalidInput(f"expires_in must be between 60 and {self.ctx.config.max_link_ttl} seconds")
        return requested

    def returns_section(self, hid: str, nonce: str, created: datetime, ttl: int, base_url: str) -> dict[str, Any]:
        """The returns section of a new handle's manifest: where and with which token a run sends its results."""
        return_ttl = min(ttl, self.ctx.config.return_ttl)
        section: dict[str, Any] = {
            "endpoint": url(base_url, "returns", hid),
            "token": links.make_token(self.ctx.config.secret_key, "return", hid, return_ttl, nonce),
            "expires": iso(created + timedelta(seconds=return_ttl)),
        }
        if self.direct_uploads:
            section["direct_threshold"] = self.ctx.config.direct_upload_threshold
        return section

    @property
    def direct_uploads(self) -> bool:
        """True when returned outputs may go straight to the object store (presigned PUTs, threshold set)."""
        if self.ctx.config.direct_upload_threshold <= 0:
            return False
        # Asked of the backend, not its class: a backend says whether it signs PUT URLs (S3 does, a folder cannot).
        return self.ctx.storage.supports_presigned_put

    def read_token(self, handle: Handle, expires_in: int | None = None) -> str:
        """A read token of the handle, ``expires_in`` seconds long (the configured link lifetime by default)."""
        return links.make_token(
            self.ctx.config.secret_key, "read", handle.id, self.expires_in(expires_in), handle.nonce
        )

    def _git_token(self, handle: Handle) -> str:
        return links.make_token(self.ctx.config.secret_key, "git", handle.id, None, handle.nonce)

    def links(self, handle: Handle, base_url: str, notebook: str, expires_in: int | None = None) -> dict[str, Any]:
        """Fresh signed links of a handle: landing, download, git (as long-lived as the handle), launch per hub;
        ``notebook`` is the bundle's notebook path (its manifest's ``payload.notebook``)."""
        bid, token = handle.id, self.read_token(handle, expires_in)
        out: dict[str, Any] = {
            "landing": url(base_url, "landing", bid, token),
            "download": url(base_url, "download", bid, token),
            "git": self.git_url(handle, base_url),
            "files": self.files_url(handle, base_url),
            "manifest": url(base_url, "manifest", bid),
            "notebook": self.notebook_url(handle, base_url, notebook),
        }
        if self.hubs:
            out["launch"] = {h.name: url(base_url, "launch", bid, token, hub=h.name) for h in self.hubs}
        return out

    def git_url(self, handle: Handle, base_url: str) -> str:
        """The handle's clone URL: its token has no expiry of its own and dies with the handle."""
        return url(base_url, "git", handle.id, self._git_token(handle))

    def files_url(self, handle: Handle, base_url: str) -> str:
        """The prefix under which every member of the handle is read (ends in ``/``); its token is the git one."""
        return url(base_url, "files", handle.id, self._git_token(handle))

    def notebook_url(self, handle: Handle, base_url: str, notebook: str) -> str:
        """The handle's notebook alone (``links.notebook``): git token in the path, ending in the notebook's name."""
        return links.public_url(base_url, "notebook", handle.id, self._git_token(handle), path=notebook)
