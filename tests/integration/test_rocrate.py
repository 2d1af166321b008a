"""RO-Crate held against its real consumers: ro-crate-py loads the bundle's and a real return's crate, and
roc-validator passes both at REQUIRED level (RO-Crate 1.2; the return also as a Process Run Crate), offline.

roc-validator fetches the JSON-LD context from the web. Here it runs with ``offline=True`` on a requests-cache
file warmed from a 127.0.0.1 server that serves the context ro-crate-py ships: the validator's own offline
mode, with no request leaving the machine.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
import requests_cache
import rocrate
from rocrate.rocrate import ROCrate
from rocrate_validator import services

from nbpack.bundle import crate as nbcrate
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.cli import main
from tests.helpers import reference_table, serving, template_notebook
from tests.unit.test_crate import DID, WEB

CONTEXT_FILE = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
OUTPUTS = {"résumé, final 1.csv": b"id,mag\n1,12.5\n", "sub dir/ü ñ,2 (raw).txt": b"x\n", "日本語.json": b"{}"}
NOTEBOOK = """\
for name, data in {outputs!r}.items():
    nbpack_runtime.save_output(data, name)
nbpack_runtime.save_value("rows", bundle.catalog("stars").num_rows)"""


class _ContextHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = CONTEXT_FILE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/ld+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _warm_cache(cache: Path) -> None:
    """Store the answer of each RO-Crate context URL the crates name (1.2 for bundles, 1.1 for returns) in a
    requests-cache file, fetched from 127.0.0.1 (the context ro-crate-py ships, a superset of both)."""
    session = requests_cache.CachedSession(str(cache), backend="sqlite", expire_after=-1)
    with serving(_ContextHandler) as base, contextlib.closing(session):
        for url in (nbcrate.CONTEXT, nbcrate.RETURN_CONTEXT):
            answer = session.get(f"{base}/context?{url}", timeout=10)
            assert answer.status_code == 200
            # Keyed as the validator asks for it: GET of the w3id URL (requests-cache keys ignore headers by default).
            wanted = requests.Request("GET", url, headers={"Accept": "application/ld+json, application/json"}).prepare()
            answer.url, answer.request = url, wanted
            session.cache.save_response(answer, session.cache.create_key(wanted))
            assert session.cache.contains(url=url)


@pytest.fixture(scope="module")
def validator_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("roc-cache") / "http_cache"
    _warm_cache(cache)
    return cache


def _validate(folder: Path, cache: Path, profile: str, **extra: Any) -> list[str]:
    result = services.validate(
        {
            "rocrate_uri": str(folder),
            "profile_identifier": profile,
            "requirement_severity": "REQUIRED",
            "offline": True,
            "cache_path": str(cache),
            **extra,
        }
    )
    return [f"{i.check.identifier}: {i.message} ({i.violatingEntity})" for i in result.issues]


@dataclass
class Crates:
    bundle_dir: Path
    return_dir: Path
    manifest: dict[str, Any]

    def graph(self, which: str) -> dict[str, dict[str, Any]]:
        folder = self.bundle_dir if which == "bundle" else self.return_dir
        doc = json.loads((folder / "ro-crate-metadata.json").read_text("utf-8"))
        return {e["@id"]: e for e in doc["@graph"]}


@pytest.fixture(scope="module")
def crates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crates]:
    """A bundle with a DID, an https file with awkward characters and awkward output names, run in a kernel."""
    tmp = tmp_path_factory.mktemp("crates")
    spec = BuildSpec(
        title="Crate, ünïcode & spaces",
        catalogs=[CatalogInput("stars", reference_table())],
        files=[
            {"name": "did_file", "uri": DID, "size": 10, "checksums": {"adler32": "0a1b2c3d"}},
            {"name": "web_file", "uri": WEB, "size": 12, "media_type": "application/fits"},
        ],
        notebook=template_notebook(NOTEBOOK.format(outputs=OUTPUTS)),
        notebook_name="Crate run 1.ipynb",
        license="cc0-1.0",
    )
    manifest = build_bundle(spec, tmp / "bundle.zip")
    with zipfile.ZipFile(tmp / "bundle.zip") as zf:
        zf.extractall(tmp / "bundle")
    main(["run", str(tmp / "bundle.zip"), "-o", str(tmp / "return.zip"), "--timeout", "120"])
    with zipfile.ZipFile(tmp / "return.zip") as zf:
        zf.extractall(tmp / "return")
    yield Crates(tmp / "bundle", tmp / "return", manifest)


def test_bundle_crate_loads_in_ro_crate_py_and_passes_roc_validator(crates: Crates, validator_cache: Path) -> None:
    crate = ROCrate(crates.bundle_dir)
    ids = {e.id for e in crate.data_entities}
    assert {nbcrate.remote_id(DID), nbcrate.remote_id(WEB), "catalogs/stars.parquet", "Crate%20run%201.ipynb"} <= ids
    assert crate.root_dataset["license"].id == "https://spdx.org/licenses/CC0-1.0"
    assert _validate(crates.bundle_dir, validator_cache, "ro-crate-1.2") == []


def test_return_crate_loads_in_ro_crate_py_and_passes_roc_validator(crates: Crates, validator_cache: Path) -> None:
    ret = json.loads((crates.return_dir / "nbpack-return.json").read_text("utf-8"))
    assert ret["status"] == "completed" and ret["values"][0]["data"] == 4
    crate = ROCrate(crates.return_dir)
    # Every output is a data entity whose @id decodes to the file in the crate, awkward names and all.
    outputs = {e.id for e in crate.data_entities if e.id.startswith("outputs/")}
    assert {unquote(i) for i in outputs} == {f"outputs/{n}" for n in OUTPUTS}
    assert all((crates.return_dir / unquote(i)).read_bytes() == OUTPUTS[unquote(i)[8:]] for i in outputs)
    # RO-Crate 1.1, the version its descriptor declares (Process Run Crate 0.5 is defined on it).
    doc = json.loads((crates.return_dir / "ro-crate-metadata.json").read_text("utf-8"))
    assert doc["@context"] == nbcrate.RETURN_CONTEXT
    assert crates.graph("return")["ro-crate-metadata.json"]["conformsTo"] == {"@id": nbcrate.RETURN_PROFILE}
    assert _validate(crates.return_dir, validator_cache, "ro-crate-1.1") == []


def test_return_crate_is_a_process_run_crate(crates: Crates, validator_cache: Path) -> None:
    # Every profile the crate declares, the RO-Crate 1.1 checks Process Run Crate 0.5 inherits included: 0 issues
    # (issue 20: a 1.2 descriptor failed the inherited ro-crate-1.1_5.3).
    assert _validate(crates.return_dir, validator_cache, "process-run-crate-0.5") == []

    crate = ROCrate(crates.return_dir)
    assert crate.root_dataset["conformsTo"].id == nbcrate.PROCESS_RUN_PROFILE
    assert crate.root_dataset["license"].id == "https://spdx.org/licenses/CC0-1.0"  # carried from the bundle
    actions = [e for e in crate.contextual_entities if e.type == "CreateAction"]
    assert len(actions) == 1
    action = actions[0]
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    instrument = action["instrument"]
    assert instrument.id == "Crate%20run%201.ipynb" and "SoftwareSourceCode" in instrument.type
    assert instrument["name"] == "Crate run 1.ipynb"
    assert {e.id for e in action["object"]} == {"#catalog-stars", nbcrate.remote_id(DID), nbcrate.remote_id(WEB)}
    assert {unquote(e.id) for e in action["result"]} == {f"outputs/{n}" for n in OUTPUTS}
    assert crate.root_dataset["mentions"].id == action.id


def test_a_did_and_an_https_file_have_the_same_id_in_both_crates(crates: Crates) -> None:
    bundle, ret = crates.graph("bundle"), crates.graph("return")
    did_id, web_id = nbcrate.remote_id(DID), nbcrate.remote_id(WEB)
    assert did_id == "rucio:" + quote(DID, safe=":/,") and web_id == WEB.replace(" ", "%20").replace("ï", "%C3%AF")
    for graph in (bundle, ret):
        assert graph[did_id]["identifier"] == DID and graph[did_id]["name"] == "did_file"
        assert graph[web_id]["name"] == "web_file" and "identifier" not in graph[web_id]
    remote = {i for i, e in bundle.items() if e.get("localPath")}
    assert remote == {did_id, web_id} == {i for i, e in ret.items() if e.get("localPath")}


def test_a_failed_run_s_crate_is_still_valid(tmp_path: Path, validator_cache: Path) -> None:
    nb = template_notebook(
        'nbpack_runtime.save_output(b"partial", "half done, ça.txt")', 'raise ValueError("no sources in the cone")'
    )
    build_bundle(
        BuildSpec(
            title="Fails",
            catalogs=[CatalogInput("stars", reference_table())],
            files=[{"name": "did_file", "uri": DID}],
            notebook=nb,
        ),
        tmp_path / "b.zip",
    )
    with pytest.raises(SystemExit):
        main(["run", str(tmp_path / "b.zip"), "-o", str(tmp_path / "r.zip"), "--timeout", "120"])
    with zipfile.ZipFile(tmp_path / "r.zip") as zf:
        zf.extractall(tmp_path / "r")
    graph = {e["@id"]: e for e in json.loads((tmp_path / "r" / "ro-crate-metadata.json").read_text())["@graph"]}
    action = graph["#run"]
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert "ValueError: no sources in the cone" in action["error"]
    assert action["result"] == [{"@id": "outputs/half%20done%2C%20%C3%A7a.txt"}]
    assert graph["./"]["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}  # the default
    ROCrate(tmp_path / "r")
    assert _validate(tmp_path / "r", validator_cache, "ro-crate-1.1") == []
    assert _validate(tmp_path / "r", validator_cache, "process-run-crate-0.5") == []
