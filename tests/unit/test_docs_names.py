"""The settings the design documents tell ESAP's developers and operators to use exist in the code: every
``NBPACK_*`` and ``RUCIO_*`` name in README.md, docs/architecture.md and docs/roadmap.md is read by nbpack."""

from __future__ import annotations

import dataclasses
import re

from nbpack.config import Config
from tests.helpers import REPO

DOCS = ("README.md", "docs/architecture.md", "docs/roadmap.md", "docs/scale-out.md")
# Names for ESAP's own settings in the roadmap's code samples, not nbpack's.
ESAP_SETTINGS = {"NBPACK_URL"}


def _source() -> str:
    return "\n".join(p.read_text("utf-8") for part in ("nbpack", "server") for p in (REPO / part).rglob("*.py"))


def _named() -> set[str]:
    return {n for doc in DOCS for n in re.findall(r"\b(?:NBPACK|RUCIO)_[A-Z0-9_]*[A-Z0-9]", (REPO / doc).read_text())}


def _unknown(names: set[str]) -> set[str]:
    """The names nbpack does not read: neither in its source nor a ``Config`` field (``NBPACK_<FIELD>``)."""
    source = _source()
    fields = {f.name for f in dataclasses.fields(Config)}
    return {n for n in names - ESAP_SETTINGS if n not in source and n.removeprefix("NBPACK_").lower() not in fields}


def test_every_setting_the_documents_name_is_read_by_nbpack() -> None:
    named = _named()
    assert {"NBPACK_SECRET_KEY", "NBPACK_API_KEYS", "RUCIO_ACCESS_TOKEN"} <= named  # the check sees the documents
    assert _unknown(named) == set()


def test_the_check_catches_a_name_nbpack_does_not_read() -> None:
    assert _unknown({"NBPACK_LINK_TIMEOUT", "NBPACK_LINK_TTL", "RUCIO_HOST"}) == {"NBPACK_LINK_TIMEOUT"}
