"""HTTP GETs of byte ranges from the service's files URL: no redirects, bounded retries, sizes checked.

The files URL carries the bundle's git token in its path, so a redirect would hand the token to wherever it
points: every 3xx is refused. The URL is the service's own (written by it, as the return endpoint is), so its
scheme is taken as given.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

from .base import CHUNK, NETWORK_ERRORS, TIMEOUT, Transient, with_retries
from .checksums import file_sha256
from .display import Progress
from .errors import ChecksumMismatch, FetchError
from .keepalive import get_kept, usable

_T = TypeVar("_T")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def shown(url: str) -> str:
    """The URL without the path segments before the member (the token stays out of messages and logs), and without
    its query (a presigned URL's signature)."""
    parts = urllib.parse.urlsplit(url)
    segments = parts.path.split("/")
    if "files" in segments:
        keep = segments.index("files") + 3  # /files/<token>/<hid>/<member path>
        segments = segments[: segments.index("files") + 1] + ["…"] + segments[keep:]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        raise FetchError(f"{shown(req.full_url)} answered HTTP {code} (a redirect): refused, the URL holds a token")


opener = urllib.request.build_opener(_NoRedirect)


def _refused(url: str, code: int, reason: str) -> Exception:
    """The error for a non-2xx answer: a 3xx or 4xx is final (FetchError), a 5xx is worth another try."""
    if 300 <= code < 400:
        return FetchError(f"{shown(url)} answered HTTP {code} (a redirect): refused, the URL holds a token", code)
    if code < 500:
        return FetchError(f"{shown(url)} answered HTTP {code} {reason}", code)
    return Transient(f"HTTP {code}")


def open_range(
    url: str, start: int, end: int | None, total: int, offset: int = 0, *, keep: bool = False
) -> tuple[Any, int]:
    """Open ``GET url`` for bytes ``start..end`` (inclusive; ``end`` None: to the end) of a ``total``-byte member.

    Returns the response and the offset its body starts at (0 when the server answered the whole member with
    200). A 3xx or 4xx raises FetchError; connection errors and 5xx raise Transient. With ``offset`` the URL is a
    ``total``-byte stored object whose bytes from ``offset`` on are the member's (a signed read): the request asks
    for ``offset + start..``, only a 206 answering exactly that is taken, and the offset returned is ``start``.
    ``keep``: over a kept-alive connection (``keepalive``) unless a proxy applies to the URL.
    """
    if offset and end is None:
        raise ValueError("a read inside a stored object needs its end")
    start, end, shift = start + offset, (None if end is None else end + offset), offset
    headers = {"Range": f"bytes={start}-{'' if end is None else end}"} if (start or end is not None) else {}
    resp: Any
    if keep and usable(url):
        resp = get_kept(url, headers)
        if resp.status >= 300:
            resp.close()
            raise _refused(url, resp.status, resp.reason)
    else:
        try:
            resp = opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
        except urllib.error.HTTPError as err:
            err.close()
            raise _refused(url, err.code, err.reason) from None
        except NETWORK_ERRORS as err:
            raise Transient(str(err)) from None
    if resp.status == 206:
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != start or (match.group(3) != "*" and int(match.group(3)) != total):
            resp.close()
            raise FetchError(
                f"{shown(url)}: Content-Range {resp.headers.get('Content-Range')!r} does not answer bytes {start}- "
                f"of a {total}-byte member"
            )
        return resp, start - shift
    if resp.status == 200 and not shift:
        length = resp.headers.get("Content-Length")
        if length is not None and int(length) != total:
            resp.close()
            raise FetchError(f"{shown(url)} has {length} bytes, the manifest says {total}")
        return resp, 0
    resp.close()
    raise FetchError(f"{shown(url)} answered HTTP {resp.status}", resp.status)


def read_exactly(resp: Any, n: int) -> bytes:
    """``n`` bytes of a response body; a body that ends early is a transient failure."""
    try:
        data = resp.read(n)
    except NETWORK_ERRORS as err:
        raise Transient(str(err)) from None
    if len(data) != n:
        raise Transient(f"the body ended after {len(data)} of {n} bytes")
    return data


def read_into(resp: Any, view: memoryview) -> None:
    """Fill ``view`` from a response body (no new bytes object per read); a body that ends early is transient."""
    done, n = 0, len(view)
    try:
        while done < n:
            got = resp.readinto(view[done:])
            if not got:
                break
            done += got
    except NETWORK_ERRORS as err:
        raise Transient(str(err)) from None
    if done != n:
        raise Transient(f"the body ended after {done} of {n} bytes")


def get_all(url: str, total: int) -> bytes:
    """A whole small member (a block sidecar), with retries."""

    def attempt() -> bytes:
        resp, _ = open_range(url, 0, None, total)
        with resp:
            return read_exactly(resp, total)

    return with_retries(shown(url), attempt)


def fetch_whole(label: str, url: str, size: int, sha: str, dest: Path) -> None:
    """Fetch a whole member to ``dest`` (resuming a part left by an earlier try) once its sha256 is checked."""
    part = dest.with_name(dest.name + ".whole")

    def attempt() -> None:
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have == size:
            return
        bar = Progress(label, size)
        resp, at = open_range(url, have, None, size)
        with resp, open(part, "ab" if at else "wb") as out:
            done = at
            while done < size:
                data = read_exactly(resp, min(CHUNK, size - done))
                out.write(data)
                done += len(data)
                bar.update(done)
        bar.update(done, final=True)

    with_retries(shown(url), attempt)
    got = file_sha256(part)
    if got != sha:
        part.unlink()
        raise ChecksumMismatch(f"{label}: sha256 expected {sha}, got {got}")
    os.replace(part, dest)
