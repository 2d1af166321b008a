"""Kept-alive connections for signed range reads: one connection per range in flight, reused range after range.

urllib opens a new connection for every request (it sends ``Connection: close``): a 1 GiB read in 8 MiB ranges made
129 connections, each with its connect, and the store set up a handler per connection (bench/README.md, "lazy3").
Here idle connections are kept per (scheme, host, port), at most ``IDLE_LIMIT`` of each (one per range in flight),
for ``IDLE_FOR`` seconds, and a range takes one or opens one.

What urllib gave stays: ``http.client`` with the same TLS defaults (``ssl`` default context, hostname checked, as
urllib's HTTPS handler builds it), the same ``Host`` header (the URL's own host and port, which a presigned URL
signs), the runtime's timeout, no redirect followed (a 3xx is handed back to ``ranges.open_range``, which refuses
it). A URL a proxy applies to (``*_PROXY`` / ``NO_PROXY``, read as urllib reads them) is not taken here: ``usable``
says no and the caller keeps urllib's path. A connection goes back to the pool only after its answer's body was read
to its end and the server did not say it closes; anything else (an error, a body left unread) closes it.

A server may close an idle connection at any time (its keep-alive timeout): a request on a reused connection that
meets a closed connection before any answer is sent once more on a new one, at once (a GET, so safe to repeat);
any other failure is the caller's (``Transient``: its retries with backoff).
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from .base import NETWORK_ERRORS, TIMEOUT, Transient

__all__ = ["Kept", "close_all", "get_kept", "usable"]

IDLE_LIMIT = 8  # idle connections kept per host: lazy.IN_FLIGHT ranges go at once
IDLE_FOR = 15.0  # seconds an idle connection is reused: below common servers' keep-alive timeouts (nginx 75 s)
# A reused connection the server has closed shows as one of these before any answer (RemoteDisconnected is both).
_STALE = (ConnectionError, http.client.BadStatusLine)

_Key = tuple[str, str, int]
_idle: dict[_Key, list[tuple[http.client.HTTPConnection, float]]] = {}
_lock = threading.Lock()


def _forget_in_child() -> None:
    # A forked child must not share its parent's sockets (both would read one answer): it starts with none, leaving
    # the parent's to the parent (closing a copy of a descriptor does not close the connection).
    global _idle, _lock
    _idle, _lock = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def usable(url: str) -> bool:
    """Whether ``url`` may go over a kept connection: http(s) with a host, and no proxy that urllib would use."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies()
    # As urllib's ProxyHandler: a proxy for the URL's scheme applies unless NO_PROXY (proxy_bypass) exempts the host.
    return parts.scheme not in proxies or bool(urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2]))


def close_all() -> None:
    """Close every idle connection (tests and bench: a fresh kernel has none)."""
    with _lock:
        idle = [conn for pool in _idle.values() for conn, _ in pool]
        _idle.clear()
    for conn in idle:
        conn.close()


def _take(key: _Key, reuse: bool) -> tuple[http.client.HTTPConnection, bool]:
    """An idle connection to ``key`` (when ``reuse``) or a new one; and whether it was reused."""
    now = time.monotonic()
    stale: list[http.client.HTTPConnection] = []
    got = None
    with _lock:
        pool = _idle.get(key, [])
        while reuse and pool and got is None:
            conn, since = pool.pop()  # the most recently used: the least likely to have been closed
            if now - since < IDLE_FOR:
                got = conn
            else:
                stale.append(conn)
    for conn in stale:
        conn.close()
    if got is not None:
        return got, True
    scheme, host, port = key
    if scheme == "https":
        # context None: ssl's default context, certificates and hostname checked, as urllib's HTTPS handler does.
        return http.client.HTTPSConnection(host, port, timeout=TIMEOUT), False
    return http.client.HTTPConnection(host, port, timeout=TIMEOUT), False


def _give(key: _Key, conn: http.client.HTTPConnection) -> None:
    with _lock:
        pool = _idle.setdefault(key, [])
        if len(pool) < IDLE_LIMIT:
            pool.append((conn, time.monotonic()))
            return
    conn.close()


class Kept:
    """An answer on a kept connection, used as urllib's: ``status``, ``reason``, ``headers``, ``read``,
    ``readinto``, a context manager. Closing it returns the connection to the pool if the body was read to its end."""

    def __init__(self, key: _Key, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._key, self._resp = key, resp
        self._conn: http.client.HTTPConnection | None = conn
        self.status, self.reason, self.headers = resp.status, resp.reason, resp.headers

    def read(self, n: int | None = None) -> bytes:
        return self._resp.read(n)

    def readinto(self, view: Any) -> int:
        return self._resp.readinto(view)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # isclosed(): http.client let go of the body after its last byte (Content-Length or the last chunk). A body
        # left unread would be read as the next answer's start, so that connection is closed instead.
        if self._resp.isclosed() and not self._resp.will_close:
            _give(self._key, conn)
        else:
            self._resp.close()
            conn.close()

    def __enter__(self) -> Kept:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_kept(url: str, headers: dict[str, str]) -> Kept:
    """``GET url`` with ``headers`` on a kept connection (``usable(url)`` must be true); any status is returned, a
    failure before an answer raises Transient."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    assert parts.hostname  # usable() said so
    key = (parts.scheme, parts.hostname, parts.port or (443 if https else 80))
    # The request target and Host exactly as urllib sends them: the path and query as written (a presigned URL's
    # signature covers them and the host:port).
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = {"Host": parts.netloc.rpartition("@")[2], **headers}
    reuse = True
    while True:
        conn, reused = _take(key, reuse)
        try:
            conn.request("GET", target, headers=sent)
            resp = conn.getresponse()
        except _STALE as err:
            conn.close()
            if reused:
                reuse = False  # closed by the server while idle: once more on a new connection
                continue
            raise Transient(str(err)) from None
        except NETWORK_ERRORS as err:
            conn.close()
            raise Transient(str(err)) from None
        return Kept(key, conn, resp)
