"""Payloads in process: a library set resolves with no network. Payloads from git repositories are in
tests/integration/test_payloads.py."""

from __future__ import annotations

from nbpack.bundle.payload_git import resolve_payload
from nbpack.bundle.payloads import Payload


def test_library_set_needs_no_network(tmp_path):
    payload = Payload.from_dict({"name": "astro basics", "requirements": ["astropy", "Astropy>=6", "pyvo"]})
    res = resolve_payload(payload, tmp_path)
    assert res.notebook is None and res.notebook_name == "astro-basics.ipynb"
    assert res.requirements == ["astropy", "pyvo"] and res.source == {}
    assert not (tmp_path / "payloads").exists()
