"""Where a webhook may go (SSRF): a callback URL is parsed, its host resolved, and every address checked.

Checked at create (a bad URL is refused before a handle exists) and again at every delivery, whose connection goes
to an address checked then (``Target.addresses``): no second DNS lookup can swap in another address. Refused:
loopback, private, link-local, shared (CGNAT), multicast, reserved, unspecified and broadcast addresses, and IPv6
forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64, 6to4, Teredo),
whatever the spelling (``127.1``, ``2130706433``, ``0x7f.1`` resolve like any name and their addresses are checked).

An operator may allow callback origins per tenant (``NBPACK_WEBHOOK_ALLOW="tenant=https://esap.example.org,…"``).
A tenant with a list may call back only to a listed origin; only a listed origin may be plain http or resolve to a
non-public address (an ESAP inside the same cluster, or a test receiver on 127.0.0.1). Unspecified and multicast
addresses are never allowed. Without any list a tenant may use any https URL whose host is public.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nbpack.errors import InvalidInput

__all__ = ["Target", "Unresolved", "parse", "check", "forbidden_reason", "MAX_URL"]

MAX_URL = 2048
# Names that only ever mean this machine or a cloud's metadata service, refused before any lookup.
_BLOCKED_NAMES = ("localhost", "metadata", "metadata.google.internal", "instance-data")
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class Unresolved(InvalidInput):
    """The host does not resolve now: refused at create, retried later at delivery (DNS may come back)."""


Resolver = Callable[[str, int], Sequence[str]]


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


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL or int(ip) >> 32 == 0:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: str) -> str | None:
    """Why a webhook must not go to ``address`` (an IP literal), or None when it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and not (ip.is_loopback or ip.is_unspecified):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = forbidden_reason(str(inner))
            return f"an IPv6 form of {reason or 'an IPv4 address'}"
    for flag, reason in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, flag):
            return reason
    return None if ip.is_global else "a non-public address"


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


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
        if target.host in _BLOCKED_NAMES or target.host.endswith(_BLOCKED_SUFFIXES):
            if not (local_mode and (target.host == "localhost" or target.host.endswith(".localhost"))):
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
        if reason in ("an unspecified address", "a multicast address") or reason.endswith(
            ("of an unspecified address", "of a multicast address")
        ):
            raise InvalidInput(f"callback_url's host resolves to {reason}")
        if listed:
            continue
        if local_mode and reason in ("a loopback address", "an IPv6 form of a loopback address"):
            continue
        raise InvalidInput(f"callback_url's host resolves to {reason}: webhooks go only to public addresses")
    if not listed and target.scheme != "https" and not all(_is_loopback(a) for a in addresses):
        raise InvalidInput("callback_url must be https (plain http only to this machine in local mode)")
    return Target(target.url, target.scheme, target.host, target.port, target.path, tuple(addresses))


def _is_loopback(address: str) -> bool:
    return forbidden_reason(address) in ("a loopback address", "an IPv6 form of a loopback address")
