"""Which network addresses nbpack may reach on someone else's word (SSRF): webhooks and payload fetches.

A host is resolved and every address it resolves to is checked; the caller then connects only to those addresses
(no second DNS lookup can swap another one in). Refused: loopback, private, link-local, shared (CGNAT),
multicast, reserved, unspecified and broadcast addresses, and IPv6 forms that carry an IPv4 address (mapped
``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64, 6to4, Teredo), whatever the spelling (``127.1``,
``2130706433``, ``0x7f.1`` resolve like any name and their addresses are checked), and names that only ever mean
this machine or a cloud's metadata service. What an operator may allow on top is each caller's policy: webhooks
list callback origins per tenant (``nbpack.webhooks.targets``), payload fetches list hosts and networks
(``AddressPolicy``). Unspecified and multicast addresses are never allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbpack.errors import InvalidInput

__all__ = [
    "AddressPolicy",
    "Refused",
    "Resolver",
    "blocked_name",
    "forbidden_reason",
    "is_local_name",
    "is_loopback",
    "never_allowed",
    "resolve",
]

# Names that only ever mean this machine or a cloud's metadata service, refused before any lookup.
_BLOCKED_NAMES = ("localhost", "metadata", "metadata.google.internal", "instance-data")
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_LOOPBACK = ("a loopback address", "an IPv6 form of a loopback address")

Resolver = Callable[[str, int], Sequence[str]]


class Refused(InvalidInput):
    """A host nbpack must not reach (``reason`` says why, without the caller's wording around it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def blocked_name(host: str) -> bool:
    """True for a name that only ever means this machine or a metadata service (``host`` lower case, no dot)."""
    return host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES)


def is_local_name(host: str) -> bool:
    """``localhost`` and its subdomains: this machine, which local mode may reach."""
    return host == "localhost" or host.endswith(".localhost")


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
    """Why nbpack must not connect to ``address`` (an IP literal), or None when it is a public unicast address."""
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


def never_allowed(reason: str) -> bool:
    """Unspecified (``0.0.0.0`` means this machine) and multicast addresses: no allow-list admits them."""
    return reason in ("an unspecified address", "a multicast address") or reason.endswith(
        ("of an unspecified address", "of a multicast address")
    )


def is_loopback(address: str) -> bool:
    """True for a loopback address in any spelling (``127.0.0.1``, ``::1``, ``::ffff:127.0.0.1``)."""
    return forbidden_reason(address) in _LOOPBACK


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, in the resolver's order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressPolicy:
    """Where a fetch may go beyond public addresses: hosts by name, networks (CIDR or one address), loopback.

    A listed name admits whatever it resolves to (an operator's git server inside the cluster); a listed network
    admits the addresses inside it, whatever name resolved to them. ``resolver`` is DNS (tests give their own).
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    loopback: bool = False
    resolver: Resolver = field(default=resolve, compare=False, repr=False)

    @classmethod
    def parse(cls, raw: Any, *, setting: str, loopback: bool = False) -> AddressPolicy:
        """``"git.cluster.svc,10.1.0.0/16,127.0.0.1"`` (or a list) → a policy; 400 naming ``setting`` and the item."""
        items: Iterable[Any] = raw if isinstance(raw, list | tuple) else str(raw or "").split(",")
        hosts: set[str] = set()
        networks: list[Network] = []
        for n, item in enumerate((str(i).strip() for i in items), 1):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host = item.lower().rstrip(".")
            if not host or any(c in host for c in "/:@ ") or host.startswith("["):
                raise InvalidInput(f"{setting}: item {n} is neither a host name nor an address or CIDR network")
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks), loopback)

    def _admits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.networks) or (self.loopback and is_loopback(address))

    def check(self, host: str, port: int) -> tuple[str, ...]:
        """The addresses ``host`` resolves to, all fit to connect to under this policy; ``Refused`` otherwise.

        ``host`` is lower case without a trailing dot. A name that does not resolve is refused too: there is
        nothing checked to connect to.
        """
        listed = host in self.hosts
        if blocked_name(host) and not listed and not (self.loopback and is_local_name(host)):
            raise Refused(f"{host} names a local or metadata host")
        try:
            addresses = tuple(self.resolver(host, port))
        except (OSError, UnicodeError):
            addresses = ()
        if not addresses:
            raise Refused(f"{host} does not resolve")
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is None:
                continue
            if never_allowed(reason) or not (listed or self._admits(address)):
                raise Refused(f"{host} resolves to {reason}")
        return addresses
