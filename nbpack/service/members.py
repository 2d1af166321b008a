"""A handle's zip and its members, read from the stored parts: the whole zip (download, ranges), one member by
path (the files endpoint), the lone notebook, and the git repository a hub clones (built once per replica).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from nbpack.bundle import lone
from nbpack.bundle.remote import Remote
from nbpack.hub import git as gitrepo
from nbpack.service.context import Context
from nbpack.service.handle import Handle
from nbpack.service.wholezip import WholeZips
from nbpack.store import members
from nbpack.store.keys import handle_key
from nbpack.store.zipparts import RangedParts, iter_parts

__all__ = ["Members"]


class Members:
    """Reads of a handle's bundle by byte range, member, notebook or git repository; the handle is given."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # A replica or worker killed mid-build leaves a temp repo and a whole temp zip; its restart clears them.
        gitrepo.sweep_leftovers(ctx.cache_dir)
        self._directories = members.Directories(ctx.read_range)
        self._whole = WholeZips(ctx)

    def zip_chunks(self, handle: Handle, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The handle's zip bytes ``start..end``, streamed part after part from storage."""
        return iter_parts(
            list(handle.parts), lambda key, s, e: self.ctx.storage.iter_chunks(key, 1 << 20, s, e), start, end
        )

    def zip_url(self, handle: Handle, filename: str) -> str | None:
        """A short-lived URL of the handle's zip as one stored object (big zips on S3), or None: stream it."""
        return self._whole.url(handle, filename)

    def open_zip(self, handle: Handle) -> BinaryIO:
        """The handle's zip as a seekable reader that fetches only the byte ranges read (zipfile can open it)."""
        return cast(BinaryIO, RangedParts(list(handle.parts), self.ctx.read_range))

    def member(self, handle: Handle, path: str) -> members.Member:
        """One member of the handle's bundle by its path (NotFound when it has none), its data located."""

        def digests() -> dict[str, str]:
            manifest = json.loads(self.ctx.storage.read_bytes(handle_key(handle.id, "manifest.json")))
            return {e["path"]: e["sha256"] for e in manifest.get("contents", []) if "sha256" in e}

        return self._directories.member(handle.id, list(handle.parts), lambda: self.open_zip(handle), digests, path)

    def member_chunks(self, member: members.Member, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` of a stored member (one ranged read), or a deflated member whole."""
        return members.member_chunks(member, self.ctx.read_range, start, end)

    def served_notebook(self, manifest: dict[str, Any], stored: bytes, files_url: str) -> tuple[str, bytes]:
        """(name, bytes) of the notebook ``links.notebook`` serves: the stored one plus where its bundle is."""
        return manifest["payload"]["notebook"], lone.served_notebook(stored, manifest, files_url)

    def git_repo(self, handle: Handle, files_url: str) -> Path:
        """The handle's git repository in the local cache, built on first use from the zip parts its tree needs.

        Catalogs of ``lazy_min_bytes`` or more stay out; ``nbpack.remote.json`` names them and ``files_url``.
        """
        return gitrepo.ensure_repo(
            lambda: self.open_zip(handle),
            handle.id,
            self.ctx.cache_dir,
            content_id=handle.content_id,
            remote=Remote(files_url, self.ctx.config.lazy_min_bytes),
        )
