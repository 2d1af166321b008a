"""Idempotent creates: a retried create with the same ``Idempotency-Key`` answers what the first one answered.

The record lives in storage (``keys.idempotency_key``, per tenant), so any replica answers a retry. It is claimed
create-once (``put_if_absent``) before the bundle is stored: of concurrent requests with one key exactly one
creates, the others wait for its answer (bounded) or are told to retry. A record says what the request was (a
sha256 of its body and options): the same key with another request is refused, never answered with the first
one's handle. A failed create removes its claim, so the retry runs again. Records are kept 24 h.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from nbpack.clock import iso, now, parse_iso
from nbpack.errors import Conflict, InvalidInput, NbpackError, NotFound
from nbpack.store.backends import Storage
from nbpack.store.keys import idempotency_key, idempotency_prefix

__all__ = ["KEEP_SECONDS", "check_key", "fingerprint", "release", "remembered", "sweep"]

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600
# A claim whose create has run this long is taken to be from a process that died mid-create.
STALE_SECONDS = 900
_MAX_KEY = 255
# A claim that could not be removed at once (storage down when its create failed) is retried for this long in the
# background; without it a retry of that create was told "in progress" until the claim went stale (15 min).
RELEASE_SECONDS = 120.0


class KeyReused(NbpackError):
    """The key was used for another request (422, as the IETF Idempotency-Key draft advises)."""

    code = "idempotency_key_reused"
    http_status = 422


def check_key(key: str | None) -> str | None:
    """The client's key when well formed (1 to 255 printable ASCII characters), None when absent; else 400."""
    if key is None:
        return None
    if not 1 <= len(key) <= _MAX_KEY or not all(" " < c <= "~" for c in key):
        raise InvalidInput(f"Idempotency-Key must be 1 to {_MAX_KEY} printable ASCII characters without spaces")
    return key


def fingerprint(*parts: bytes | str | Path) -> str:
    """The sha256 that stands for a request: its options, and its body (a file on disk is read as it streams)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest = hashlib.sha256()
            with open(part, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            data = digest.digest()
        else:
            data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _read(storage: Storage, where: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(storage.read_bytes(where))
    except NotFound:
        return None
    except ValueError:
        return {}  # a damaged record: treated as stale
    return doc if isinstance(doc, dict) else {}


def _expired(doc: dict[str, Any], seconds: int) -> bool:
    try:
        return parse_iso(doc["at"]) < now() - timedelta(seconds=seconds)
    except (KeyError, TypeError, ValueError):
        return True


def remembered(
    storage: Storage,
    tenant: str,
    key: str,
    request: str,
    create: Callable[[], dict[str, Any]],
    *,
    wait: float = 20.0,
    poll: float = 0.2,
) -> tuple[dict[str, Any], bool]:
    """``(answer, replayed)``: the first answer to ``key`` of this tenant, or ``create()``'s, remembered.

    ``request`` is the request's fingerprint. A key in use for another request is a 422; one whose first request
    is still running is waited for up to ``wait`` seconds, then a 409 the client retries.
    """
    where = idempotency_key(tenant, key)
    deadline = time.monotonic() + wait
    while True:
        claim = {"request": request, "at": iso(now())}
        if storage.put_if_absent(where, json.dumps(claim).encode()):
            break
        doc = _read(storage, where)
        if doc is None:
            continue  # removed meanwhile (a failed create, or a sweep): claim again
        if _expired(doc, KEEP_SECONDS if "answer" in doc else STALE_SECONDS):
            storage.delete(where)
            continue
        if doc.get("request") != request:
            raise KeyReused(
                "this Idempotency-Key was already used for a different create request; use a new key for a new request"
            )
        if "answer" in doc:
            return doc["answer"], True
        if time.monotonic() >= deadline:
            raise Conflict(
                "a create with this Idempotency-Key is still running; retry it in a moment",
                code="idempotency_in_progress",
            )
        time.sleep(poll)
    try:
        answer = create()
    except BaseException:
        release(storage, where)  # nothing was created under this key: a retry runs again
        raise
    storage.put_bytes(where, json.dumps({**claim, "answer": answer}, sort_keys=True).encode())
    return answer, False


def release(storage: Storage, where: str, *, seconds: float = RELEASE_SECONDS, pause: float = 1.0) -> None:
    """Remove a failed create's claim; while storage refuses, keep trying on a thread for ``seconds``.

    Nobody else may take the claim before it is stale (``STALE_SECONDS``, far longer), so a late removal never
    removes another request's claim.
    """

    def attempt() -> bool:
        try:
            storage.delete(where)
        except Exception:
            return False
        return True

    if attempt():
        return

    def keep_trying() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(pause)
            if attempt():
                return
        log.warning("an Idempotency-Key claim could not be released; it goes stale in %d s", STALE_SECONDS)

    threading.Thread(target=keep_trying, name="nbpack-idempotency-release", daemon=True).start()


def sweep(storage: Storage, tenant: str, *, dry_run: bool = False) -> list[str]:
    """Remove a tenant's records older than 24 h (their keys are forgotten); the keys removed."""
    cutoff = now() - timedelta(seconds=KEEP_SECONDS + STALE_SECONDS)
    gone = []
    for info in storage.list(idempotency_prefix(tenant)):
        if info.modified is not None and info.modified < cutoff:
            gone.append(info.key)
            if not dry_run:
                storage.delete(info.key)
    return gone
