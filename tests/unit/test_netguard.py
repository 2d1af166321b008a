"""The payload address policy piece by piece (the webhook check shares its core: tests/unit/test_webhook.py)."""

from __future__ import annotations

import pytest

from nbpack.bundle.payloads import Payload, fetch_args
from nbpack.config import load_config
from nbpack.errors import InvalidInput
from nbpack.netguard import AddressPolicy, Refused

BASE = {"NBPACK_STORAGE": "memory://", "NBPACK_SECRET_KEY": "k" * 32, "NBPACK_PUBLIC_URL": "https://n.example.org"}


def _answer(*addresses: str):  # noqa: ANN202
    return lambda host, port: list(addresses)


def test_listed_names_and_networks_admit_non_public_addresses_but_never_unspecified() -> None:
    policy = AddressPolicy.parse(["git.cluster.svc", "10.1.0.0/16", "[fd00::1]"], setting="S")
    assert AddressPolicy(policy.hosts, policy.networks, resolver=_answer("10.9.9.9")).check("git.cluster.svc", 80)
    assert AddressPolicy(policy.hosts, policy.networks, resolver=_answer("10.1.2.3")).check("x.example.org", 80)
    assert AddressPolicy(policy.hosts, policy.networks, resolver=_answer("fd00::1")).check("v6.example.org", 80)
    for answer, host in ((["10.2.0.1"], "x.example.org"), (["0.0.0.0"], "git.cluster.svc"), ([], "gone.example")):
        with pytest.raises(Refused):
            AddressPolicy(policy.hosts, policy.networks, resolver=_answer(*answer)).check(host, 80)
    with pytest.raises(Refused, match="local or metadata"):
        policy.check("metadata.google.internal", 80)


def test_the_setting_is_read_checked_and_local_mode_adds_loopback() -> None:
    cfg = load_config({**BASE, "NBPACK_PAYLOAD_ALLOW": "git.cluster.svc, 10.0.0.0/8"})
    assert cfg.payload_policy.hosts == {"git.cluster.svc"} and not cfg.payload_policy.loopback
    assert load_config(BASE).payload_policy == AddressPolicy()
    assert load_config(
        {"NBPACK_STORAGE": "memory://", "NBPACK_SECRET_KEY": "k" * 32}, local_mode=True
    ).payload_policy.loopback
    for bad in ("git.example.org:8443", "https://git.example.org", "a b", "user@host"):
        with pytest.raises(InvalidInput, match="NBPACK_PAYLOAD_ALLOW: item 1"):
            load_config({**BASE, "NBPACK_PAYLOAD_ALLOW": bad})


def test_fetch_flags_pin_every_checked_address_and_refuse_redirects() -> None:
    payload = Payload.from_dict({"name": "w", "url": "https://Git.Example.org./w.git", "filepath": "a.ipynb"})
    policy = AddressPolicy(resolver=_answer("93.184.216.34", "2606:2800::1"))
    assert fetch_args(payload, policy) == (
        "-c",
        "http.followRedirects=false",
        "-c",
        "http.curloptResolve=git.example.org:443:93.184.216.34,[2606:2800::1]",
    )
    literal = Payload.from_dict({"name": "l", "url": "https://[2606:2800::1]:8443/w.git", "filepath": "a.ipynb"})
    assert fetch_args(literal, AddressPolicy()) == ("-c", "http.followRedirects=false")  # no lookup to pin
    git_url = Payload.from_dict({"name": "g", "url": "git://git.example.org/w", "filepath": "a.ipynb"})
    assert fetch_args(git_url, policy) == ("-c", "http.followRedirects=false")  # git:// cannot be pinned
    assert fetch_args(Payload.from_dict({"name": "f", "url": "file:///srv/w", "filepath": "a.ipynb"}), policy) == ()
