"""Where a webhook may go (SSRF): a callback URL is parsed, its host resolved, and every address checked.

Checked at create (a bad URL is refused before a handle exists) and again at every delivery, whose connection goes
to an address checked then (``Target.addresses``): no second DNS lookup can swap in another address. What is
refused, in every spelling, is ``nbpack.netguard``'s (payload fetches use the same check).

An operator may allow callback origins per tenant (``NBPACK_WEBHOOK_ALLOW="tenant=https://esap.example.org,…"``).
A tenant with a list may call back only to a listed origin; only a listed origin may be plain http or resolve to a
non-public address (an ESAP inside the same cluster, or a test receiver on 127.0.0.1). Unspecified and multicast
addresses are never allowed. Without any list a tenant may use any https URL whose host is public.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nbpack.errors import InvalidInput
from nbpack.netguard import Resolver, blocked_name, forbidden_reason, is_local_name, is_loopback, never_allowed
from nbpack.netguard import resolve as _resolve

__all__ = ["Target", "Unresolved", "Resolver", "parse", "check", "forbidden_reason", "MAX_URL"]

MAX_URL = 2048


class Unresolved(InvalidInput):
    """The host does not resolve now: refused at create, retried later at delivery (DNS may come back)."""


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart, with the addresses it was checked at (connect only to these)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...] = ()


def parse(url: Any) -> Target:
    """The URL's parts, or 400: one http(s) URL with a host, no credentials, at most 2048 characters."""
    if not isinstance(url, str) or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"callback_url must be one URL of at most {MAX_URL} characters without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("callback_url must be https")
    host = (parts.hostname or "").lower()
    host = host[:-1] if host.endswith(".") else host
    if not host:
        raise InvalidInput("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("callback_url must not carry credentials (user:password@): the webhook is signed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _origin_matches(entry: str, target: Target) -> bool:
    """``https://host[:port]``, ``http://host[:port]`` or a bare ``host[:port]`` (https); no port means any."""
    scheme, sep, rest = entry.partition("://")
    if not sep:
        scheme, rest = "https", entry
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    return scheme.lower() == target.scheme and host == target.host and (port is None or port == target.port)


def check(
    url: Any,
    allow: Sequence[str] | None = None,
    *,
    local_mode: bool = False,
    resolve: Resolver = _resolve,
) -> Target:
    """A callback URL fit to deliver to now, with its checked addresses; 400 (``InvalidInput``) otherwise.

    ``allow`` is the tenant's operator list (None or empty: any public https host). ``local_mode`` (``nbpack
    serve`` on a laptop) also lets loopback through, as before.
    """
    target = parse(url)
    listed = bool(allow) and any(_origin_matches(entry, target) for entry in allow or ())
    if allow and not listed:
        raise InvalidInput("callback_url is not among the callback origins the operator allows for this tenant")
    if not listed:
        if blocked_name(target.host):
            if not (local_mode and is_local_name(target.host)):
                raise InvalidInput("callback_url names a local or metadata host: webhooks go only to public hosts")
        if target.scheme != "https" and not local_mode:
            raise InvalidInput("callback_url must be https")
    try:
        addresses = list(resolve(target.host, target.port))
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        if target.scheme != "https" and not listed:
            raise InvalidInput("callback_url must be https (plain http only to this machine in local mode)")
        raise Unresolved("callback_url's host does not resolve")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is None:
            continue
        if never_allowed(reason):
            raise InvalidInput(f"callback_url's host resolves to {reason}")
        if listed:
            continue
        if local_mode and is_loopback(address):
            continue
        raise InvalidInput(f"callback_url's host resolves to {reason}: webhooks go only to public addresses")
    if not listed and target.scheme != "https" and not all(is_loopback(a) for a in addresses):
        raise InvalidInput("callback_url must be https (plain http only to this machine in local mode)")
    return Target(target.url, target.scheme, target.host, target.port, target.path, tuple(addresses))
