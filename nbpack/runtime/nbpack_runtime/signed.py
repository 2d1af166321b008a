"""Signed range reads: a lazily read member's ranges sent straight to the object store, not through the service.

The service is asked once per member (``<files URL of the member>?signed=1``) for a short-lived presigned GET URL
of the one stored object holding the member's data, with the data's offset and length in it (``vocab.SIGNED_KEYS``).
The ranges then go to that URL; every block is still checked against the block digests by the reader, so storage is
trusted for nothing but availability. Whatever goes wrong with the signed path (no URL offered, an old service, a
URL this module will not send a request to, storage unreachable or refusing) leaves the files URL, which always
works: a 403 (the URL expired) is asked again once, and after that the member is read through the service.

The URL rule (``accepted``): https only, or http when the service's own files URL is http (a loopback or test
setup: no TLS to lose); no credentials in it; never a URL that carries the files URL's token. Neither request
follows a redirect (``ranges.opener``).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .base import TIMEOUT
from .errors import ChecksumMismatch, FetchError, RuntimeProblem
from .keepalive import close_all
from .ranges import open_range, opener
from .remote import signed_request_url
from .vocab import SIGNED_KEYS

__all__ = ["Grant", "Source", "accepted", "ask", "forget"]

_MAX_ANSWER = 64 << 10  # a signed-read answer is a few hundred bytes; an old service would send the member itself
_MARGIN = 10.0  # seconds before its stated expiry a URL is no longer used (clock skew, a slow range)
_NONE_FOR = 60.0  # after the service offered no URL, it is not asked again for this long


@dataclass(frozen=True)
class Grant:
    """A signed read of one member: ``url`` holds its ``length`` bytes from ``offset`` on, of ``object_bytes``."""

    url: str
    offset: int
    length: int
    object_bytes: int
    deadline: float  # time.monotonic() after which the URL is not used


def _token_segment(files_url: str) -> str | None:
    """The git token in a files URL (``…/files/<token>/<hid>/<path>``), if it has that shape."""
    segments = urllib.parse.urlsplit(files_url).path.split("/")
    if "files" in segments and len(segments) > segments.index("files") + 1:
        return segments[segments.index("files") + 1] or None
    return None


def accepted(url: object, files_url: str) -> str:
    """``url`` if the runtime may send a request to it as a signed read of a member of ``files_url``, else
    RuntimeProblem saying why."""
    if not isinstance(url, str) or not url:
        raise RuntimeProblem("the signed URL is not a string")
    parts = urllib.parse.urlsplit(url)
    own = urllib.parse.urlsplit(files_url).scheme
    if parts.scheme != "https" and not (parts.scheme == "http" and own == "http"):
        # Over plain http the URL (a bearer capability until it expires) and the data would cross the network in
        # clear where the service itself is reached over TLS.
        raise RuntimeProblem(f"a signed URL must be https (the service is {own}), got {parts.scheme or 'none'}")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise RuntimeProblem("a signed URL must name a host and carry no credentials or fragment")
    token = _token_segment(files_url)
    if token and token in url:
        raise RuntimeProblem("a signed URL must not carry the files URL's token")
    return url


def _whole(doc: dict, key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RuntimeProblem(f"the signed read's {key!r} is not a whole number")
    return value


def ask(member: str, size: int) -> Grant:
    """Ask the service for a signed read of the ``size``-byte member at files URL ``member``; RuntimeProblem when
    it offers none (or anything this module will not use)."""
    req = urllib.request.Request(signed_request_url(member), headers={"Accept": "application/json"})
    try:
        with opener.open(req, timeout=TIMEOUT) as resp:
            kind = resp.headers.get("Content-Type", "")
            if resp.status != 200 or not kind.startswith("application/json"):
                raise RuntimeProblem(f"the service answered a signed read with HTTP {resp.status} {kind}")
            raw = resp.read(_MAX_ANSWER + 1)
        if len(raw) > _MAX_ANSWER:
            raise RuntimeProblem("the signed read's answer is too long")
        doc = json.loads(raw)
    except urllib.error.HTTPError as err:
        err.close()
        raise RuntimeProblem(f"the service offers no signed read (HTTP {err.code})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
        raise RuntimeProblem(f"no signed read ({err})") from None
    if not isinstance(doc, dict):
        raise RuntimeProblem("the signed read is not a JSON object")
    url_key, offset_key, length_key, object_key, expires_key = SIGNED_KEYS
    url = accepted(doc.get(url_key), member)
    offset, length, whole, expires = (_whole(doc, k) for k in (offset_key, length_key, object_key, expires_key))
    if length != size or offset + length > whole:
        raise RuntimeProblem(f"the signed read names {length} bytes at {offset} of {whole}; the member has {size}")
    return Grant(url, offset, length, whole, time.monotonic() + expires - min(_MARGIN, expires / 2))


# Grants by member files URL, shared by every reader in the kernel: one ask per member until its URL expires. A
# missing grant is kept as None for _NONE_FOR seconds (its deadline), so a service without signed reads is asked once
# a minute, not once a read.
_grants: dict[str, tuple[Grant | None, float]] = {}
_asking: dict[str, threading.Lock] = {}
_lock = threading.Lock()


def forget() -> None:
    """Drop every remembered grant and kept connection (tests, bench: a fresh kernel; a kernel never needs to)."""
    with _lock:
        _grants.clear()
        _asking.clear()
    close_all()


class Source:
    """Where one reader's ranges of a member go: its signed URL while that works, else the files URL."""

    def __init__(self, member: str, size: int) -> None:
        self.member, self.size = member, size
        self.lock = threading.Lock()
        self.renewing = threading.Lock()
        self.renewed = False  # a 403 was answered by asking again: the next one falls back
        self.fallen_back = False
        self.direct = 0  # ranges that went to storage (tests, bench)

    def grant(self, renew: bool = False) -> Grant | None:
        """The member's grant (asked at most once per expiry, or again when ``renew``); None: use the files URL."""
        with _lock:
            asking = _asking.setdefault(self.member, threading.Lock())
        # One ask at a time per member: the first ranges of a read start together and would each ask.
        with asking:
            if not renew:
                with _lock:
                    held, deadline = _grants.get(self.member, (None, 0.0))
                if time.monotonic() < deadline and (held is None or held.deadline > time.monotonic()):
                    return held
            try:
                got: Grant | None = ask(self.member, self.size)
            except RuntimeProblem:
                got = None
            with _lock:
                _grants[self.member] = (got, got.deadline if got else time.monotonic() + _NONE_FOR)
            return got

    def open(self, start: int, end: int) -> tuple[Any, int]:
        """Open bytes ``start..end`` (inclusive) of the member: from storage when signed, else the files URL."""
        grant = None if self.fallen_back else self.grant()
        while grant is not None:
            try:
                opened = open_range(grant.url, start, end, grant.object_bytes, grant.offset, keep=True)
            except ChecksumMismatch:
                raise
            except FetchError as err:
                if err.status != 403:
                    grant = None  # refused otherwise (a 404, a redirect, a wrong answer): the files URL
                    continue
                # 403: the URL expired (or the store's clock runs ahead). One fresh URL per reader, asked by the
                # first range refused; the others refused meanwhile wait for it and use it; a 403 after that leaves
                # the signed path.
                with self.renewing:
                    current = self.grant()
                    if current is not None and current is not grant:
                        grant = current
                    elif not self.renewed:
                        self.renewed = True
                        grant = self.grant(renew=True)
                    else:
                        grant = None
                continue
            except Exception:  # noqa: BLE001 - storage unreachable or failing: the service path still works
                grant = None
                continue
            with self.lock:
                self.direct += 1
            return opened
        with self.lock:
            self.fallen_back = True
        return open_range(self.member, start, end, self.size)
