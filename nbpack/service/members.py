"""A handle's zip and its members, read from the stored parts: the whole zip (download, ranges), one member by
path (the files endpoint), the lone notebook, and the git repository a hub clones (built once per replica).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast

from nbpack.bundle import lone
from nbpack.bundle.remote import Remote
from nbpack.errors import Conflict
from nbpack.hub import git as gitrepo
from nbpack.hub.links import SIGNED_READ
from nbpack.runtime.nbpack_runtime.vocab import SIGNED_KEYS
from nbpack.service.context import Context
from nbpack.service.handle import Handle
from nbpack.service.wholezip import WholeZips
from nbpack.store import members
from nbpack.store.keys import handle_key
from nbpack.store.zipparts import RangedParts, iter_parts

__all__ = ["Members", "SIGNED_READ"]

log = logging.getLogger(__name__)

# Background builds a worker queues at most (landing pages viewed, repositories not yet built): beyond it a view
# queues nothing, and the clone builds the repository itself as it always could.
MAX_PENDING_BUILDS = 8


class Members:
    """Reads of a handle's bundle by byte range, member, notebook or git repository; the handle is given."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # A replica or worker killed mid-build leaves a temp repo and a whole temp zip; its restart clears them.
        gitrepo.sweep_leftovers(ctx.cache_dir)
        self._directories = members.Directories(ctx.read_range)
        self._whole = WholeZips(ctx)
        # One builder thread per worker, started on first use: a landing page's view builds the repo a click clones.
        self._builder: ThreadPoolExecutor | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()

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

    def signed_read(self, handle: Handle, path: str) -> dict[str, Any]:
        """A short-lived presigned GET of the one stored object holding member ``path``'s data, with the data's
        offset and length in it (``vocab.SIGNED_KEYS``); 409 when there is none to give (signing off, a backend that
        cannot sign, a deflated member): the reader then keeps to the files URL.

        The object is a content-addressed part (or the handle's own head/tail), never rewritten while the handle
        lives, so the URL names exactly the bytes the member's block digests check. ``handle`` must be freshly read:
        the URL outlives the check by its TTL, so the check itself must not be a remembered one.
        """
        cfg = self.ctx.config
        found = self.member(handle, path)
        url = self.ctx.storage.presigned_get(found.part, cfg.signed_read_ttl) if cfg.signed_reads else None
        if url is None or not found.stored:
            raise Conflict("this member is read through the files URL only", code="signed_read_unavailable")
        sizes = dict(handle.parts)
        values = (url, found.data, found.size, sizes[found.part], cfg.signed_read_ttl)
        return dict(zip(SIGNED_KEYS, values, strict=True))

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

    def prepare_git_repo(self, handle: Handle, files_url: str) -> None:
        """Build the handle's repository in the background, so the clone a launch click starts finds it built.

        nbgitpuller asks ``git ls-remote`` before it clones, and waits for it in its request: a first ls-remote that
        builds the repository paid that build (~40 ms quiet, more under load) on the click's path. The landing page
        asks for it here while the user reads the page. Best effort: a failed or skipped build is left to the clone,
        which builds (or answers the error) as before; the build lock makes a concurrent clone wait, not build twice.
        """
        with self._lock:
            if handle.id in self._pending or len(self._pending) >= MAX_PENDING_BUILDS:
                return
            self._pending.add(handle.id)
            if self._builder is None:
                self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbpack-git-build")
            builder = self._builder
        builder.submit(self._build_quietly, handle, files_url)

    def _build_quietly(self, handle: Handle, files_url: str) -> None:
        try:
            self.git_repo(handle, files_url)
        except Exception as exc:  # a background thread's error is seen only if logged; the clone answers it
            log.warning("background git build failed", extra={"bundle": handle.id, "error": str(exc)[:300]})
        finally:
            with self._lock:
                self._pending.discard(handle.id)
