"""ESAP's facility and workflow lists exactly as the real gateway serves them (captured from esap-api-gateway
9c6f7fc running its own IDA fixture: examples/esap/*-search.json), read with no overlay."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, urlsplit

import pytest

from nbpack.bundle.payloads import PayloadCatalog, load_catalog, workflow_payload
from nbpack.errors import InvalidInput, NotFound
from nbpack.hub.launch import hub_launch_url
from nbpack.hub.registry import load_esap_facilities
from tests.helpers import REPO

ESAP = REPO / "examples" / "esap"
GIT_URL = "https://nbpack.example.org/git/b_0123456789abcdef/t_token.git"
MANIFEST = {"title": "Basket, 7 items", "payload": {"notebook": "cta.ipynb"}, "files": []}


def test_every_esap_facility_launches_as_esap_deploy_does() -> None:
    hubs = load_esap_facilities(ESAP / "facilities-search.json")
    page = json.loads((ESAP / "facilities-search.json").read_text())
    assert [h.name for h in hubs] == [f["name"] for f in page["results"]]
    assert {f["facilitytype"] for f in page["results"]} == {"jupyterhub"}
    for hub in hubs:
        link = hub_launch_url(hub, "b_0123456789abcdef", MANIFEST, git_url=GIT_URL, notebook_url="")
        assert hub.launch == "binderhub"
        # ESAP's Deploy: f"{facility.url}v2/git/{quote(repo)}/{ref}?urlpath=lab/tree/…"
        assert link.startswith(f"{hub.url}v2/git/{quote(GIT_URL, safe='')}/main?"), link
        assert "urlpath=" in urlsplit(link).query


def test_the_operators_file_says_which_facility_is_a_jupyterhub() -> None:
    hubs = load_esap_facilities(ESAP / "facilities-search.json", {"CSCS CTA BinderHub": {"launch": "nbgitpuller"}})
    by_name = {h.name: h.launch for h in hubs}
    assert by_name["CSCS CTA BinderHub"] == "nbgitpuller" and by_name["MyBinder"] == "binderhub"


def test_the_workflow_answer_is_accepted_as_served(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nbpack.bundle.payloads"):
        catalog = load_catalog(ESAP / "workflows-search.json")
    names = [p.name for p in catalog.all()]
    assert "TOPCAT" not in names and "CTA Gammapy Example" in names
    assert len(names) == 4  # 6 served: the desktop one and a second "HESS DR3 analysis with gammapy" left out
    left_out = [r.getMessage() for r in caplog.records]
    assert len(left_out) == 2
    assert any("'TOPCAT'" in m and "desktop" in m for m in left_out)
    assert any("'HESS DR3 analysis with gammapy'" in m for m in left_out)
    # ESAP's Deploy link names a workflow by its URL: found by URL
    cta = catalog.get("https://git.astron.nl/astron-sdc/escape-wp5/workflows/cta-example")
    assert cta.name == "CTA Gammapy Example" and cta.filepath.endswith("cta.ipynb") and cta.ref == "master"


def test_a_workflow_named_by_its_url_or_given_inline() -> None:
    ossr = PayloadCatalog([]).get("https://gitlab.in2p3.fr/escape2020/wp3/ossr-demo")
    assert ossr.url == ossr.name and ossr.ref == "HEAD" and ossr.filepath == ""
    inline = workflow_payload({"url": "https://h.example/r.git", "ref": None, "filepath": "a/b.ipynb", "class": "x"})
    assert (inline.name, inline.ref, inline.filepath) == ("https://h.example/r.git", "HEAD", "a/b.ipynb")
    with pytest.raises(NotFound):
        PayloadCatalog([]).get("file:///etc/passwd")
    for url in ("file:///srv/repo", "git://h/r", "/srv/repo"):
        with pytest.raises(InvalidInput, match="https:// or http://"):
            workflow_payload({"url": url})
    with pytest.raises(InvalidInput, match="relative path"):
        workflow_payload({"url": "https://h/r", "filepath": "../../x.ipynb"})
