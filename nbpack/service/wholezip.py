"""A big handle's zip as one object in the store, handed out by a short-lived presigned GET URL.

Streaming a zip from its parts costs a second hop (store → worker → client) for every byte; on S3 a zip of
``whole_zip_min_bytes`` or more is instead composed once, inside the store (``S3Storage.compose``: UploadPartCopy
ranges of the stored records, no big record's bytes through the service), at ``handles/<id>/whole.zip``. Its first
download streams and starts the composition; every download after it is a redirect to the object. The object lives
under the handle's prefix, so a delete (or gc of an expired handle) removes it with the rest; it is a copy of bytes
the tenant is charged for once (the zip's size), so quota does not count it again. The URL grants one thing: GET of
that object, for ``URL_TTL`` seconds; a download asks for a new one each time, after the handle's capability has
been checked, so a revoked or deleted handle gets no URL from then on.
"""

from __future__ import annotations

import logging
import threading
import time

from nbpack.errors import NotFound
from nbpack.service.context import Context
from nbpack.service.handle import Handle
from nbpack.store.keys import HANDLE, handle_key

__all__ = ["URL_TTL", "WHOLE_ZIP", "WholeZips"]

log = logging.getLogger(__name__)

WHOLE_ZIP = "whole.zip"
# Long enough for a client to follow the redirect, short enough that a URL copied out of a browser dies soon. S3
# checks it when a GET starts: a download that has started runs to its end; a resumed one asks the service again.
URL_TTL = 120
# Compositions one worker runs at once: each is a thread and a stream of storage copies, so downloads of many big
# handles (one tenant's, say) must not start one each; past this they stream and a later download starts it.
MAX_COMPOSING = 2


class WholeZips:
    """Whole-zip objects of big handles on a store with presigned URLs; remembers which exist in this worker."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._present: set[str] = set()  # handle ids whose whole zip this worker has seen (they never change)
        self._composing: set[str] = set()  # handle ids this worker is composing now
        self._lock = threading.Lock()

    def url(self, handle: Handle, filename: str) -> str | None:
        """A presigned GET URL of the handle's whole zip, or None to stream it: the zip is below the threshold, the
        store has no presigned URLs, or the whole zip is not there yet (its composition is started, in the
        background: a 1 GiB zip takes SeaweedFS tens of seconds to copy, which no download should wait for)."""
        limit = self.ctx.config.whole_zip_min_bytes
        storage = self.ctx.storage
        if not limit or handle.size < limit:
            return None
        key = handle_key(handle.id, WHOLE_ZIP)
        # Signing is local arithmetic (no request); a store without URLs says None here and is never asked more.
        url = storage.presigned_get(key, URL_TTL, filename)
        if url is None or handle.id in self._present:
            return url
        try:
            present = storage.stat(key).size == handle.size
        except NotFound:
            present = False
        if present:
            with self._lock:
                self._present.add(handle.id)
            return url
        self._start(handle, key)
        return None

    def _start(self, handle: Handle, key: str) -> None:
        with self._lock:
            if handle.id in self._composing or len(self._composing) >= MAX_COMPOSING:
                return
            self._composing.add(handle.id)
        threading.Thread(target=self._compose, args=(handle, key), name=f"compose-{handle.id}", daemon=True).start()

    def _compose(self, handle: Handle, key: str) -> None:
        storage = self.ctx.storage
        t0 = time.monotonic()
        try:
            # Replicas composing at once write the same bytes to the same key: the last to finish wins, and a
            # reader sees one whole object or the other, never a mix. A worker killed meanwhile leaves an unfinished
            # multipart upload (no object): the bucket's lifecycle rule for those removes it.
            storage.compose(key, handle.parts)
            if not storage.exists(handle_key(handle.id, HANDLE)):
                # Deleted while composing: its delete has swept the prefix already; sweep the late copy too.
                storage.delete(key)
                return
            with self._lock:
                self._present.add(handle.id)
            log.info("whole zip composed", extra={"bundle": handle.id, "seconds": round(time.monotonic() - t0, 2)})
        except Exception:  # the downloads go on streaming; the next one tries again
            log.warning("whole zip not composed", extra={"bundle": handle.id}, exc_info=True)
        finally:
            with self._lock:
                self._composing.discard(handle.id)
