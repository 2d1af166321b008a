"""The RO-Crate of bundles and returns in process (nbpack/bundle/crate.py and the runtime's crate.py): the same id
rules on both sides of the wall, licenses (build option, create request, the API, the return's fallback), one entity
for two names of one file. Loading in ro-crate-py and roc-validator are in tests/integration/test_rocrate.py."""

from __future__ import annotations

import json
import string
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbpack.bundle import crate as nbcrate
from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.cli import main
from nbpack.errors import InvalidInput
from nbpack.runtime import nbpack_runtime as rt
from nbpack.runtime.nbpack_runtime import crate as rtcrate
from nbpack.service.create import spec_from_request
from tests.helpers import make_app
from tests.openapi_check import check_response

DID = "user.jdoe:run_7/é,ü.fits"  # DIDs hold no whitespace; unicode, commas and "/" they may
WEB = "https://data.example.org/lake/spectra,%202026/naïve spec 1.fits"


@given(st.text(max_size=60))
def test_crate_ids_are_uris_and_local_ids_decode_back(text: str) -> None:
    uri_chars = set(string.ascii_letters + string.digits + ":/?#[]@!$&'()*+,;=-._~%")
    for uri in (text, f"https://h.example/{text}", f"scope:{text}"):
        assert set(nbcrate.remote_id(uri)) <= uri_chars
    assert nbcrate.remote_id("scope:name") == "rucio:scope:name"
    assert unquote(nbcrate.local_id(text)) == text


def test_the_default_license_is_spdx_s_cc_by_4() -> None:
    # The runtime's record (the return crate's fallback) is what SPDX's list says of nbpack's default.
    assert rtcrate.DEFAULT_LICENSE == nbcrate.license_for(None)
    assert nbcrate.license_for(None)["spdx"] == nbcrate.DEFAULT_LICENSE == "CC-BY-4.0"


def _manifest(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as zf:
        return json.loads(zf.read("nbpack.json"))


def test_build_license_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["build", "-o", str(tmp_path / "a.zip"), "--license", "mit"])
    assert _manifest(tmp_path / "a.zip")["license"] == {
        "spdx": "MIT",
        "url": "https://spdx.org/licenses/MIT",
        "name": "MIT License",
    }
    terms = "https://example.org/licences/naïve-terms,v2"
    main(["build", "-o", str(tmp_path / "b.zip"), "--license", terms])
    assert _manifest(tmp_path / "b.zip")["license"] == {"url": terms, "name": terms}
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        crate = {e["@id"]: e for e in json.loads(zf.read("ro-crate-metadata.json"))["@graph"]}
    assert crate["./"]["license"] == {"@id": "https://example.org/licences/na%C3%AFve-terms,v2"}
    assert crate["https://example.org/licences/na%C3%AFve-terms,v2"]["@type"] == "CreativeWork"
    main(["build", "-o", str(tmp_path / "c.zip")])
    assert _manifest(tmp_path / "c.zip")["license"]["spdx"] == "CC-BY-4.0"  # the documented default
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["build", "-o", str(tmp_path / "d.zip"), "--license", "CC-BY4.0"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nbpack: error: license 'CC-BY4.0' is neither an SPDX")
    assert not (tmp_path / "d.zip").exists()


def test_create_request_license(tmp_path: Path) -> None:
    spec = spec_from_request({"title": "t", "license": "Apache-2.0", "catalogs": [{"name": "c", "rows": [{"a": 1}]}]})
    assert spec.license == "Apache-2.0"
    assert build_bundle(spec, tmp_path / "x.zip")["license"]["spdx"] == "Apache-2.0"
    for bad in (7, "", "GPL-9.9", "https://example.org/has space"):
        with pytest.raises(InvalidInput, match="license"):
            build_bundle(spec_from_request({"title": "t", "license": bad}), tmp_path / "y.zip")
    assert not (tmp_path / "y.zip").exists()


def test_the_api_takes_a_license_and_refuses_a_bad_one(tmp_path: Path) -> None:
    app = make_app(tmp_path, api_keys="k-1")
    client = app.test_client()
    body = {"title": "Licensed", "catalogs": [{"name": "c", "rows": [{"a": 1}]}]}
    resp = client.post("/api/v1/bundles", json={**body, "license": "cc0-1.0"}, headers={"X-API-Key": "k-1"})
    doc = check_response(resp)
    assert resp.status_code == 201, doc
    resp = client.get(f"/api/v1/bundles/{doc['id']}", headers={"X-API-Key": "k-1"})
    assert check_response(resp)["license"]["url"] == "https://spdx.org/licenses/CC0-1.0"
    resp = client.post("/api/v1/bundles", json={**body, "license": "CC-BY 4"}, headers={"X-API-Key": "k-1"})
    doc = check_response(resp)
    assert resp.status_code == 400 and "license 'CC-BY 4'" in doc["message"], doc


@pytest.mark.parametrize("recorded", [None, {"url": "https://example.org/terms"}, "CC0-1.0"])
def test_the_return_crate_falls_back_to_the_default_license(recorded: Any) -> None:
    # A manifest from before licenses, or a hand-edited one: the return still gets a license (and a name for it).
    manifest = {
        "id": "b-" + "0" * 24,
        "title": "Old",
        "catalogs": [],
        "files": [{"name": "f", "uri": DID}, {"name": "g", "uri": DID}],
    }
    if recorded is not None:
        manifest["license"] = recorded
    ret = {
        "id": "r-" + "1" * 24,
        "status": "completed",
        "started": "2026-01-01T00:00:00Z",
        "ended": "2026-01-01T00:01:00Z",
        "notebook": "a.ipynb",
        "outputs": [],
        "contents": [],
    }
    graph = {e["@id"]: e for e in rtcrate.crate_metadata(rt.Bundle(Path("."), manifest), ret)["@graph"]}
    want = "https://example.org/terms" if isinstance(recorded, dict) else "https://spdx.org/licenses/CC-BY-4.0"
    assert graph["./"]["license"] == {"@id": want} and graph[want]["name"]
    assert graph["#run"]["endTime"] == "2026-01-01T00:01:00+00:00"
    assert graph["#run"]["instrument"] == {"@id": "#notebook"}  # not saved: described, not claimed as a file
    assert graph["./"]["hasPart"] == [{"@id": nbcrate.remote_id(DID)}]


def test_two_names_for_one_file_are_one_entity(tmp_path: Path) -> None:
    refs = [{"name": "good", "uri": WEB}, {"name": "again", "uri": WEB}, {"name": "d", "uri": DID}]
    build_bundle(BuildSpec(title="Twice", files=refs), tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        graph = json.loads(zf.read("ro-crate-metadata.json"))["@graph"]
    ids = [e["@id"] for e in graph]
    assert len(ids) == len(set(ids))
    root = next(e for e in graph if e["@id"] == "./")
    assert [p["@id"] for p in root["hasPart"] if ":" in p["@id"]] == [nbcrate.remote_id(WEB), nbcrate.remote_id(DID)]
