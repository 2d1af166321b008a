"""Named payloads through the service and the CLI, against real git repositories served by `git daemon`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from nbpack.cli import main
from tests.integration.test_payloads import GitServer, _free_port, _git, _notebook

REPO = Path(__file__).resolve().parents[2]
API_KEY = "esap-backend-key"
HEADERS = {"X-API-Key": API_KEY}
HUBS = """
[[hubs]]
name = "Radio Hub"
url = "https://radio.example.org/"
packages = ["casacore==3.5.0", "astropy==6.0.1", "numpy==1.26.4"]

[[hubs]]
name = "Plain Hub"
url = "https://plain.example.org/"
packages = ["numpy==1.26.4", "astropy==6.0.1"]

[[hubs]]
name = "GPU Hub"
url = "https://gpu.example.org/"
packages = ["torch==2.3.0"]
gpu = true
"""


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):  # noqa: ANN001, ANN201
    srv = GitServer(tmp_path_factory.mktemp("repos"), tmp_path_factory.mktemp("log") / "daemon.log")
    srv.make_repo("imaging", {"notebooks/image.ipynb": _notebook("print('v1')"), "requirements.txt": b"numpy>=1.24\n"})
    srv.make_repo("other", {"notes.txt": b"not a notebook", "README.md": b"# other\n"})
    yield srv
    srv.proc.terminate()
    srv.proc.wait(timeout=10)


def _catalog(srv: GitServer, path: Path) -> Path:
    url = srv.url("imaging")
    path.write_text(f"""
[[payload]]
name = "lofar-imaging"
description = "Image LOFAR visibilities"
url = "{url}"
ref = "main"
filepath = "notebooks/image.ipynb"
keywords = ["lofar", "imaging"]
requirements = ["astropy>=6"]
hub = {{ packages = ["casacore"] }}

[[payload]]
name = "gpu-training"
description = "Train a classifier on a GPU"
keywords = ["ml"]
requirements = ["torch"]
hub = {{ gpu = true }}

[[payload]]
name = "missing-ref"
url = "{url}"
ref = "no-such-branch"
filepath = "notebooks/image.ipynb"

[[payload]]
name = "unreachable"
url = "git://127.0.0.1:{_free_port()}/gone"
filepath = "a.ipynb"

[[payload]]
name = "not-a-notebook"
url = "{srv.url("other")}"
ref = "main"
filepath = "notes.txt"
""")
    return path


@pytest.fixture
def app_config(git_server: GitServer, tmp_path: Path) -> dict:  # for tests/conftest.py's app and client
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(HUBS)
    return {
        "api_keys": API_KEY,
        "hubs_file": str(hubs),
        "payloads_file": str(_catalog(git_server, tmp_path / "payloads.toml")),
        "payload_allow": "127.0.0.1",  # the git daemon's host, listed as an operator lists an internal one
    }


def _create(client, name: str) -> tuple[int, dict]:  # noqa: ANN001 - Flask test client
    resp = client.post("/api/v1/bundles", json={"payload": name}, headers=HEADERS)
    return resp.status_code, resp.get_json()


def _zip(client, bid: str) -> zipfile.ZipFile:  # noqa: ANN001
    resp = client.get(f"/api/v1/bundles/{bid}/download", headers=HEADERS)
    assert resp.status_code == 200
    return zipfile.ZipFile(io.BytesIO(resp.get_data()))


def _cells(zf: zipfile.ZipFile, manifest: dict) -> str:
    nb = json.loads(zf.read(manifest["payload"]["notebook"]))
    return "\n".join("".join(c["source"]) for c in nb["cells"])


def test_payload_bundle_pins_the_commit_and_moving_the_branch_changes_only_new_bundles(
    git_server: GitServer, client
) -> None:  # noqa: ANN001
    repo = git_server.base / "imaging"
    sha1 = _git(repo, "rev-parse", "HEAD")
    status, created = _create(client, "lofar-imaging")
    assert status == 201, created
    first = client.get(f"/api/v1/bundles/{created['id']}", headers=HEADERS).get_json()
    assert first["payload"]["name"] == "lofar-imaging"
    assert first["payload"]["source"] == {
        "url": git_server.url("imaging"),
        "ref": "main",
        "commit": sha1,
        "filepath": "notebooks/image.ipynb",
    }
    assert first["payload"]["requirements"] == ["astropy>=6", "numpy>=1.24"]
    with _zip(client, created["id"]) as zf:
        assert {"astropy>=6", "numpy>=1.24"} <= set(zf.read("requirements.txt").decode().split())
        assert "print('v1')" in _cells(zf, first)
        first_notebook = zf.read(first["payload"]["notebook"])
    status, again = _create(client, "lofar-imaging")  # same commit: the same content, a new handle
    assert (status, again["content_id"]) == (201, created["content_id"]) and again["id"] != created["id"]

    try:
        git_server.commit(repo, {"notebooks/image.ipynb": _notebook("print('v2')")})
        sha2 = _git(repo, "rev-parse", "HEAD")
        status, moved = _create(client, "lofar-imaging")
        assert status == 201 and moved["content_id"] != created["content_id"]
        second = client.get(f"/api/v1/bundles/{moved['id']}", headers=HEADERS).get_json()
        assert second["payload"]["source"]["commit"] == sha2
        with _zip(client, moved["id"]) as zf:
            assert "print('v2')" in _cells(zf, second) and "print('v1')" not in _cells(zf, second)
    finally:
        _git(repo, "reset", "-q", "--hard", sha1)  # other tests expect the first commit
    # The old bundle is untouched: stored manifest, zip and preview notebook.
    assert client.get(f"/api/v1/bundles/{created['id']}", headers=HEADERS).get_json() == first
    with _zip(client, created["id"]) as zf:
        assert zf.read(first["payload"]["notebook"]) == first_notebook


def _ranking(client, bid: str) -> dict[str, dict]:  # noqa: ANN001
    resp = client.get(f"/api/v1/bundles/{bid}/hubs", headers=HEADERS)
    assert resp.status_code == 200
    return {r["hub"]["name"]: r for r in resp.get_json()["hubs"]}


def test_hub_ranking_follows_the_payload_requirements(client) -> None:  # noqa: ANN001
    status, imaging = _create(client, "lofar-imaging")
    assert status == 201, imaging
    ranked = _ranking(client, imaging["id"])
    assert ranked["Radio Hub"]["can_run"] and ranked["Radio Hub"]["score"] > 0
    assert not ranked["Plain Hub"]["can_run"] and ranked["Plain Hub"]["score"] == -1
    assert "lacks casacore, which the payload needs from its hub" in ranked["Plain Hub"]["reasons"]

    status, gpu = _create(client, "gpu-training")
    assert status == 201, gpu
    ranked = _ranking(client, gpu["id"])
    assert [name for name, r in ranked.items() if r["can_run"]] == ["GPU Hub"]
    for name in ("Radio Hub", "Plain Hub"):
        assert "needs a GPU; this hub has none" in ranked[name]["reasons"]


def test_payload_catalog_search_and_lookup(client) -> None:  # noqa: ANN001
    def names(query: str) -> list[str]:
        resp = client.get(f"/api/v1/payloads{query}", headers=HEADERS)
        assert resp.status_code == 200
        return [p["name"] for p in resp.get_json()["payloads"]]

    assert names("?keyword=LOFAR") == ["lofar-imaging"]
    assert names("?keyword=ml") == ["gpu-training"]
    assert names("?q=classifier") == ["gpu-training"]
    assert names("?keyword=lofar&q=classifier") == []
    assert len(names("")) == 5
    one = client.get("/api/v1/payloads/lofar-imaging", headers=HEADERS).get_json()
    assert one["kind"] == "git" and one["hub"] == {"packages": ["casacore"]}
    assert client.get("/api/v1/payloads", headers={}).status_code == 401


def _cache_entries(cache: Path) -> list[Path]:
    root = cache / "payloads"
    return sorted(root.glob("*/*")) if root.exists() else []


@pytest.mark.parametrize(
    ("name", "status", "code", "words"),
    [
        ("no-such-payload", 404, "payload_not_found", ["unknown payload 'no-such-payload'"]),
        ("unreachable", 422, "payload_unreachable", ["payload 'unreachable'", "cannot reach git://127.0.0.1:"]),
        ("missing-ref", 422, "payload_ref_not_found", ["payload 'missing-ref'", "ref 'no-such-branch' does not exist"]),
        (
            "not-a-notebook",
            422,
            "payload_not_notebook",
            ["payload 'not-a-notebook'", "notes.txt is not a valid notebook"],
        ),
    ],
)
def test_payload_failures_are_json_naming_the_problem_and_cache_nothing(
    client, tmp_path: Path, name: str, status: int, code: str, words: list[str]
) -> None:  # noqa: ANN001
    got, body = _create(client, name)
    assert got == status and body["error"] == code, body
    assert all(w in body["message"] for w in words), body["message"]
    assert "\n" not in body["message"]
    assert _cache_entries(tmp_path / "cache") == []
    assert not (tmp_path / "store" / "bundles").exists() or not any((tmp_path / "store" / "bundles").iterdir())


def test_cli_build_from_a_named_payload(
    git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = _catalog(git_server, tmp_path / "payloads.toml")
    out = tmp_path / "imaging.zip"
    env = {**os.environ, "HOME": str(tmp_path / "home")}  # the CLI caches payloads under ~/.cache/nbpack
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "nbpack"),
            "build",
            "--payload",
            "lofar-imaging",
            "--payloads",
            str(catalog),
            "-o",
            str(out),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["payload"]["source"]["commit"] == _git(git_server.base / "imaging", "rev-parse", "HEAD")
    assert manifest["payload"]["requirements"] == ["astropy>=6", "numpy>=1.24"]
    with zipfile.ZipFile(out) as zf:
        assert {"astropy>=6", "numpy>=1.24"} <= set(zf.read("requirements.txt").decode().split())
        assert "print('v1')" in _cells(zf, manifest)
        assert hashlib.sha256(zf.read(manifest["payload"]["notebook"])).hexdigest() == next(
            e["sha256"] for e in manifest["contents"] if e["path"] == manifest["payload"]["notebook"]
        )

    # The failure in-process (same entry point; spares a second interpreter start, ~5 s of imports here).
    monkeypatch.setenv("HOME", env["HOME"])
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "--payload", "missing-ref", "--payloads", str(catalog), "-o", str(tmp_path / "bad.zip")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and not (tmp_path / "bad.zip").exists()
    assert "ref 'no-such-branch' does not exist" in err and len(err.strip().splitlines()) == 1
