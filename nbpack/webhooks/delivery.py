"""One webhook attempt: a Standard Webhooks signed POST to an address checked just before, no redirect followed.

``attempt`` never raises: it answers what happened and whether trying again later may help. Retrying, leases and
fairness are the outbox's and the dispatcher's (``outbox.py``, ``dispatch.py``); this module only talks HTTP.
"""

from __future__ import annotations

import functools
import http.client
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from nbpack.errors import InvalidInput
from nbpack.webhooks import signing, targets

__all__ = ["Attempt", "attempt", "post", "redact_url", "USER_AGENT"]

USER_AGENT = "nbpack-webhook/2"
_READ_AT_MOST = 65536


@dataclass(frozen=True)
class Attempt:
    """What one POST got: its status (None without an answer), an error for logs (no secret, no query string),
    whether a later attempt may succeed, and how long the receiver asked to wait (``Retry-After``)."""

    status: int | None
    error: str | None = None
    retry: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@functools.lru_cache(maxsize=4)
def _tls(cert_file: str | None) -> ssl.SSLContext:
    # Keyed by SSL_CERT_FILE so an operator's (or a test's) CA bundle is honoured once set.
    return ssl.create_default_context()


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to one checked address while the Host header (and TLS name) stay the URL's host."""

    def __init__(self, target: targets.Target, address: str, connect_timeout: float, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address, self.connect_timeout = address, connect_timeout

    def _connect_socket(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), self.connect_timeout)
        sock.settimeout(self.timeout)
        return sock

    def connect(self) -> None:
        self.sock = self._connect_socket()


class _PinnedHTTPS(_PinnedHTTP):
    def connect(self) -> None:
        sock = self._connect_socket()
        try:
            self.sock = _tls(os.environ.get("SSL_CERT_FILE")).wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post(
    target: targets.Target, body: bytes, headers: dict[str, str], *, connect_timeout: float, timeout: float
) -> tuple[int, float | None]:
    """POST to the first of ``target.addresses`` that connects; ``(status, Retry-After seconds)``. Raises OSError or
    HTTPException when no address answers. A redirect is a status like any other: never followed."""
    last: Exception = OSError("no address to connect to")
    for address in target.addresses:
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = kind(target, address, connect_timeout, timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:  # next address, if the name had several
                last = exc
                continue
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(_READ_AT_MOST)
            return response.status, _seconds(response.getheader("Retry-After"))
        finally:
            conn.close()
    raise last


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None and len(value) < 20 else None
    except ValueError:
        return None


def attempt(
    url: str,
    body: bytes,
    msg_id: str,
    secrets: Sequence[str],
    *,
    allow: Sequence[str] | None = None,
    local_mode: bool = False,
    connect_timeout: float = 3.0,
    timeout: float = 10.0,
    resolve: targets.Resolver | None = None,
) -> Attempt:
    """Check ``url`` again (resolving its host), sign ``body`` for this attempt and POST it once."""
    try:
        checked = targets.check(url, allow, local_mode=local_mode, **({"resolve": resolve} if resolve else {}))
    except targets.Unresolved as exc:
        return Attempt(None, exc.message, retry=True)
    except InvalidInput as exc:
        return Attempt(None, f"refused: {exc.message}", retry=False)
    if not secrets:
        return Attempt(None, "no webhook secret for this tenant", retry=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.signed_headers(secrets, msg_id, body),
    }
    try:
        status, wait = post(checked, body, headers, connect_timeout=connect_timeout, timeout=timeout)
    except (OSError, http.client.HTTPException) as exc:
        # The exception's text names addresses and reasons, never the URL's path or query.
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:300], retry=True)
    if 200 <= status < 300:
        return Attempt(status)
    if 300 <= status < 400:
        return Attempt(status, f"HTTP {status}: redirects are not followed", retry=False)
    retry = status >= 500 or status in (408, 425, 429)
    return Attempt(status, f"HTTP {status}", retry=retry, retry_after=wait if status in (429, 503) else None)


def redact_url(url: str) -> str:
    """A callback URL fit for logs: scheme, host, port and path; no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(unparseable URL)"
