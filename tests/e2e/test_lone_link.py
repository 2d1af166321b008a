"""links.notebook: the handle's notebook alone, its URL layout, what it carries, who may read it."""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from urllib.parse import urlsplit

import pytest

from nbpack.bundle import lone
from nbpack.bundle import remote as nbpack_remote
from nbpack.bundle.notebook import BOOTSTRAP_TAG
from nbpack.hub import links
from server.observe import redact
from tests.helpers import APP_API_KEY, load_runtime_package, unload_runtime
from tests.openapi_check import check_response

H = {"X-API-Key": APP_API_KEY}


def _create(client, title: str = "Lone, notebook é") -> dict:
    body = {
        "title": title,
        "catalogs": [
            {"name": "sources", "rows": [{"id": 2**60 + 1, "ra": 10.5}, {"id": 2, "ra": None}]},
            {"name": "lc", "rows": [{"t": 1.5}]},
        ],
    }
    resp = client.post("/api/v1/bundles", json=body, headers=H)
    doc = check_response(resp)
    assert resp.status_code == 201, doc
    return doc


def _path(url: str) -> str:
    return urlsplit(url).path


def test_notebook_link_layout_and_served_notebook(client) -> None:
    created = _create(client)
    hid, link = created["id"], created["links"]["notebook"]
    manifest = client.get(f"/api/v1/bundles/{hid}", headers=H).get_json()
    name = manifest["payload"]["notebook"]
    git_token = _path(created["links"]["git"]).split("/")[2]
    # The capability is in the path and the path ends in the notebook's own name: no query for a browser to keep.
    assert link == links.public_url("http://localhost", "notebook", hid, git_token, path=name)
    assert _path(link) == f"/nb/{git_token}/{hid}/{name}" and not urlsplit(link).query
    assert link.endswith(".ipynb")
    # The links API gives the same URL (it lives as long as the handle, as the git token does).
    again = client.get(f"/api/v1/bundles/{hid}/links", headers=H)
    assert check_response(again)["links"]["notebook"] == link

    resp = client.get(_path(link))
    check_response(resp)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/x-ipynb+json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert name in resp.headers["Content-Disposition"]
    nb = json.loads(resp.get_data())
    files = f"http://localhost/files/{git_token}/{hid}/"
    assert nb["metadata"]["nbpack"]["remote"] == {
        "files": files,
        "lazy": ["catalogs/lc.parquet", "catalogs/sources.parquet"],
    }
    boot = [c for c in nb["cells"] if BOOTSTRAP_TAG in c["metadata"].get("tags", [])]
    assert len(boot) == 1
    assert f"NBPACK_FILES = {json.dumps(files)}" in "".join(boot[0]["source"])
    # Everything else is the notebook as built (the one in the bundle zip).
    with zipfile.ZipFile(io.BytesIO(client.get(f"/api/v1/bundles/{hid}/download", headers=H).get_data())) as zf:
        built = json.loads(zf.read(name))
    assert "FILES = None" in "".join(next(c for c in built["cells"] if c["id"] == boot[0]["id"])["source"])
    for cell in (*nb["cells"], *built["cells"]):
        if BOOTSTRAP_TAG in cell["metadata"].get("tags", []):
            cell["source"] = ""
    del nb["metadata"]["nbpack"]
    assert nb == built


def test_notebook_link_refuses_wrong_token_name_and_deleted_handle(client) -> None:
    created = _create(client, "Refusals")
    hid, link = created["id"], created["links"]["notebook"]
    path = _path(link)
    other = _create(client, "Other")
    other_token = _path(other["links"]["git"]).split("/")[2]

    wrong_name = client.get(path.rsplit("/", 1)[0] + "/other.ipynb")
    assert wrong_name.status_code == 404 and check_response(wrong_name)["error"] == "not_found"
    foreign = client.get(f"/nb/{other_token}/{hid}/x.ipynb")
    assert foreign.status_code == 403 and check_response(foreign)["error"] == "token_bundle"
    read_token = urlsplit(created["links"]["landing"]).query.split("t=", 1)[1]
    scoped = client.get(f"/nb/{read_token}/{hid}/x.ipynb")
    assert scoped.status_code == 403 and check_response(scoped)["error"] == "token_scope"

    assert client.delete(f"/api/v1/bundles/{hid}", headers=H).status_code == 204
    gone = client.get(path)
    assert gone.status_code == 403 and check_response(gone)["error"] == "token_revoked"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/nb/SECRET/h-1/a.ipynb", "/nb/REDACTED/h-1/a.ipynb"),
        ("/files/SECRET/h-1/catalogs/x.parquet", "/files/REDACTED/h-1/catalogs/x.parquet"),
        ("/api/v1/bundles/h-1/returns/r-1/files/outputs/a", "/api/v1/bundles/h-1/returns/r-1/files/outputs/a"),
    ],
)
def test_tokens_in_paths_are_redacted_in_logs(path: str, logged: str) -> None:
    assert redact(path) == logged


def test_the_served_document_uses_the_runtimes_names() -> None:
    # The runtime may not import nbpack: both define the remote document's names, and they must agree.
    rt = load_runtime_package("nbpack_runtime_lone_names")
    try:
        remote = importlib.import_module("nbpack_runtime_lone_names.remote")
        doc = lone.remote_document(
            {"catalogs": [{"path": "catalogs/b.parquet"}, {"path": "catalogs/a.parquet"}]}, "https://h/files/t/h-1/"
        )
        assert remote.check_remote(doc, "served") == doc
        assert (nbpack_remote.FILES, nbpack_remote.LAZY, nbpack_remote.METADATA_KEY) == (
            remote.FILES,
            remote.LAZY,
            remote.METADATA_KEY,
        )
        assert rt.start_alone.__module__.endswith(".alone")
    finally:
        unload_runtime("nbpack_runtime_lone_names")
