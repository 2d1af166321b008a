"""Payload catalog and git payload resolution against real repositories served by `git daemon`."""

from __future__ import annotations

import dataclasses
import functools
import json
import socket
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from nbpack.bundle import payload_git
from nbpack.bundle.payloads import Payload, PayloadCatalog, load_catalog
from nbpack.errors import InvalidInput, NotFound
from nbpack.netguard import AddressPolicy
from tests.helpers import file_server

ROOT = Path(__file__).resolve().parents[2]
# The git servers here listen on 127.0.0.1: allowed the way an operator lists an internal git host.
LOOPBACK_LISTED = AddressPolicy.parse("127.0.0.1", setting="NBPACK_PAYLOAD_ALLOW")
resolve_payload = functools.partial(payload_git.resolve_payload, policy=LOOPBACK_LISTED)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": "/usr/bin:/bin",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, check=True, timeout=30)
    return out.stdout.decode().strip()


def _notebook(text: str) -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text, id="c1")])
    return nbformat.writes(nb).encode()


class GitServer:
    """A `git daemon` on 127.0.0.1 serving every repository under ``base``; counts upload-pack requests."""

    def __init__(self, base: Path, log: Path) -> None:
        self.base, self.log, self.port = base, log, _free_port()
        self.proc = subprocess.Popen(
            [
                "git", "daemon", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
                f"--port={self.port}", "--reuseaddr", "--enable=upload-pack", "--verbose", str(base),
            ],
            env=GIT_ENV,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def upload_packs(self) -> int:
        return self.log.read_text(errors="replace").count("Request upload-pack")

    def make_repo(self, name: str, files: dict[str, bytes], branch: str = "main") -> Path:
        repo = self.base / name
        repo.mkdir()
        _git(repo, "init", "-q", "-b", branch)
        return self.commit(repo, files)

    def commit(self, repo: Path, files: dict[str, bytes]) -> Path:
        for rel, data in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_bytes(data)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "change")
        return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("repos")
    srv = GitServer(base, tmp_path_factory.mktemp("log") / "daemon.log")
    yield srv
    srv.proc.terminate()
    srv.proc.wait(timeout=10)


ENVIRONMENT = b"""name: analysis
channels:
  - conda-forge
dependencies:
  - python=3.11
  - numpy
  - pip
  - pip:
      - pyvo>=1.5
      - astropy>=6
"""

ANALYSIS = {
    "notebooks/analysis.ipynb": _notebook("print('v1')"),
    "requirements.txt": b"# analysis\nnumpy>=1.24\nastropy\n-e .\n",
    "environment.yml": ENVIRONMENT,
    "apt.txt": b"libcfitsio-dev\n",
    "notes.txt": b"not a notebook",
    "notebooks/broken.ipynb": b'{"cells": 1}',
}


@pytest.fixture(scope="module")
def analysis(server):
    return server.make_repo("analysis", ANALYSIS)


def _payload(url: str, **kw) -> Payload:
    return Payload.from_dict(
        {"name": "analysis", "url": url, "ref": "main", "filepath": "notebooks/analysis.ipynb", **kw}
    )


def _entries(cache: Path) -> list[Path]:
    """Every published cache entry and every leftover temporary folder."""
    root = cache / "payloads"
    return sorted(p for p in root.glob("*/*")) if root.exists() else []


def test_resolve_pins_commit_and_reads_software(server, analysis, tmp_path):
    payload = _payload(server.url("analysis"), requirements=["numpy==1.26"])
    res = resolve_payload(payload, tmp_path)
    head = _git(analysis, "rev-parse", "main")
    assert res.source == {"url": server.url("analysis"), "ref": "main", "commit": head,
                          "filepath": "notebooks/analysis.ipynb"}  # fmt: skip
    assert res.notebook == ANALYSIS["notebooks/analysis.ipynb"]
    assert res.notebook_name == "analysis.ipynb"
    # The payload's own pin wins over the repository's; environment.yml's pip list joins requirements.
    assert res.requirements == ["numpy==1.26", "astropy", "pyvo>=1.5"]
    assert res.conda == ["python=3.11", "numpy", "pip"]
    assert res.extra_files == {"apt.txt": b"libcfitsio-dev\n"}
    assert [p.name for p in _entries(tmp_path)] == [head]


def test_second_resolve_uses_cache(server, analysis, tmp_path):
    payload = _payload(server.url("analysis"))
    first = resolve_payload(payload, tmp_path)
    before = server.upload_packs()
    second = resolve_payload(payload, tmp_path)
    # One upload-pack request: the ls-remote that re-checks the ref; no fetch.
    assert server.upload_packs() - before == 1
    assert second == first


def test_moved_branch_gives_new_commit_and_keeps_old_entry(server, tmp_path):
    repo = server.make_repo("moving", {"nb.ipynb": _notebook("1")})
    payload = Payload.from_dict({"name": "m", "url": server.url("moving"), "ref": "main", "filepath": "nb.ipynb"})
    old = resolve_payload(payload, tmp_path)
    server.commit(repo, {"nb.ipynb": _notebook("2"), "requirements.txt": b"scipy\n"})
    new = resolve_payload(payload, tmp_path)
    assert new.source["commit"] == _git(repo, "rev-parse", "main") != old.source["commit"]
    assert new.notebook == _notebook("2") and new.requirements == ["scipy"]
    assert old.requirements == []
    entries = {p.name: p for p in _entries(tmp_path)}
    assert set(entries) == {old.source["commit"], new.source["commit"]}
    assert (entries[old.source["commit"]] / "files" / "nb.ipynb").read_bytes() == _notebook("1")
    # Pinning the old commit by sha still works and comes from the cache.
    before = server.upload_packs()
    pinned = resolve_payload(dataclasses.replace(payload, ref=old.source["commit"]), tmp_path)
    assert pinned.notebook == _notebook("1") and server.upload_packs() == before


def test_binder_folder_wins(server, tmp_path):
    server.make_repo(
        "binderized",
        {
            "work.ipynb": _notebook("x"),
            "requirements.txt": b"ignored-by-repo2docker\n",
            "binder/requirements.txt": b"pandas>=2\n",
            "binder/postBuild": b"#!/bin/sh\necho hi\n",
            "binder/runtime.txt": b"python-3.11\n",
        },
        branch="trunk",
    )
    payload = Payload.from_dict(
        {"name": "b", "url": server.url("binderized"), "ref": "trunk", "filepath": "work.ipynb"}
    )
    res = resolve_payload(payload, tmp_path)
    assert res.requirements == ["pandas>=2"]
    assert res.extra_files == {"binder/postBuild": b"#!/bin/sh\necho hi\n", "binder/runtime.txt": b"python-3.11\n"}


def test_sha_ref_fetches_that_commit(server, tmp_path):
    repo = server.make_repo("pinned", {"a.ipynb": _notebook("old")})
    old_sha = _git(repo, "rev-parse", "HEAD")
    server.commit(repo, {"a.ipynb": _notebook("new")})
    payload = Payload.from_dict({"name": "p", "url": server.url("pinned"), "ref": old_sha, "filepath": "a.ipynb"})
    res = resolve_payload(payload, tmp_path)
    assert res.source["commit"] == old_sha and res.notebook == _notebook("old")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"url": "git://127.0.0.1:{closed}/analysis"}, "payload_unreachable"),
        ({"url": "{server}/no-such-repo"}, "payload_unreachable"),
        ({"ref": "no-such-branch"}, "payload_ref_not_found"),
        ({"ref": "0" * 40}, "payload_ref_not_found"),
        ({"filepath": "notebooks/missing.ipynb"}, "payload_not_notebook"),
        ({"filepath": "notes.txt"}, "payload_not_notebook"),
        ({"filepath": "notebooks/broken.ipynb"}, "payload_not_notebook"),
    ],
)
def test_resolve_errors_cache_nothing(server, analysis, tmp_path, change, code):
    fields = {k: v.format(closed=_free_port(), server=server.url("")[:-1]) for k, v in change.items()}
    payload = _payload(**{"url": server.url("analysis"), **fields})
    with pytest.raises(InvalidInput) as err:
        resolve_payload(payload, tmp_path, timeout=10)
    assert err.value.code == code and err.value.http_status == 422
    assert "analysis" in str(err.value) and "\n" not in str(err.value)
    assert _entries(tmp_path) == []


def test_missing_file_after_cache_hit_is_refused_without_fetch(server, analysis, tmp_path):
    resolve_payload(_payload(server.url("analysis")), tmp_path)
    before = server.upload_packs()
    with pytest.raises(InvalidInput, match="missing.ipynb is not in"):
        resolve_payload(_payload(server.url("analysis"), filepath="missing.ipynb"), tmp_path)
    assert server.upload_packs() - before == 1


def test_other_notebook_of_cached_commit_is_added(server, analysis, tmp_path):
    repo_nb = "notebooks/second.ipynb"
    repo = server.make_repo("two-notebooks", {"notebooks/first.ipynb": _notebook("1"), repo_nb: _notebook("2")})
    url = server.url("two-notebooks")
    first = resolve_payload(Payload.from_dict({"name": "a", "url": url, "filepath": "notebooks/first.ipynb"}), tmp_path)
    second = resolve_payload(Payload.from_dict({"name": "b", "url": url, "filepath": repo_nb}), tmp_path)
    assert first.source["commit"] == second.source["commit"] == _git(repo, "rev-parse", "HEAD")
    assert second.notebook == _notebook("2") and second.source["ref"] == "HEAD"


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "ssh://host/repo", "-uhelp", "/local/path"])
def test_refuses_other_url_schemes(url):
    with pytest.raises(InvalidInput, match="not allowed"):
        Payload.from_dict({"name": "x", "url": url, "filepath": "a.ipynb"})


def test_example_catalog_and_search():
    catalog = load_catalog(ROOT / "examples" / "payloads.toml")
    assert len(catalog.all()) == 4
    assert [p.name for p in catalog.all() if p.is_library_set] == ["astro-basics", "radio-gpu"]
    assert catalog.get("radio-gpu").hub["gpu"] is True
    assert [p.name for p in catalog.search(keyword="RADIO")] == ["lofar-imaging", "radio-gpu"]
    assert [p.name for p in catalog.search(text="hertzsprung")] == ["gaia-hr-diagram"]
    assert [p.name for p in catalog.search(keyword="radio", text="gpu")] == ["radio-gpu"]
    assert catalog.search(keyword="rad") == []
    with pytest.raises(NotFound, match="unknown payload 'nope'") as err:
        catalog.get("nope")
    assert err.value.http_status == 404
    lofar = catalog.get("lofar-imaging")
    assert json.loads(json.dumps(lofar.to_json()))["kind"] == "git"
    assert Payload.from_dict(lofar.to_json()) == lofar


def test_esap_workflow_json(tmp_path):
    page = {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"id": 1, "name": "ZTF light curves", "description": "Plot ZTF light curves",
             "url": "https://github.com/example/ztf.git", "ref": "master", "filepath": "ztf.ipynb",
             "workflowtype": "notebook", "keywords": "ZTF, optical ,time-domain", "author": "x",
             "runtimePlatform": "jupyter"},
            {"id": 2, "name": "Pulsars", "description": "", "url": "", "ref": "", "filepath": "",
             "workflowtype": "libraries", "keywords": ["radio"], "author": "", "runtimePlatform": ""},
        ],
    }  # fmt: skip
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps(page))
    catalog = load_catalog(path)
    ztf = catalog.get("ZTF light curves")
    assert ztf.keywords == ["ZTF", "optical", "time-domain"] and ztf.ref == "master"
    assert catalog.get("Pulsars").is_library_set
    assert [p.name for p in catalog.search(keyword="ztf")] == ["ZTF light curves"]
    path.write_text(json.dumps(page["results"]))
    assert len(load_catalog(path)) == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], "duplicate payload name 'a'"),
        ([{"name": "a", "colour": "red"}], "unknown field"),
        ([{"name": "a", "url": "https://h/r.git"}], "needs a filepath"),
        ([{"name": "a", "url": "https://h/r.git", "filepath": "../x.ipynb"}], "relative path"),
        ([{"name": "a", "hub": {"gpu": "yes"}}], "hub.gpu"),
        ({"other": 1}, "no list of payloads"),
    ],
)
def test_bad_catalogs(tmp_path, doc, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match=message):
        load_catalog(path)
    assert isinstance(PayloadCatalog([]).all(), list)


def test_server_refusing_shallow_fetch_falls_back_to_full_fetch(server, tmp_path):
    """Git's dumb HTTP protocol cannot fetch by sha nor shallow: the full fetch must still pin the commit."""
    repo = server.make_repo("dumb", {"nb.ipynb": _notebook("dumb"), "requirements.txt": b"pyvo\n"})
    _git(repo, "update-server-info")
    with file_server(server.base) as base:
        url = f"{base}/dumb/.git".replace("//", "//reader:tok3n@")  # credentials must stay out of the recorded source
        payload = Payload.from_dict({"name": "d", "url": url, "ref": "main", "filepath": "nb.ipynb"})
        res = resolve_payload(payload, tmp_path, timeout=20)
    assert res.source["commit"] == _git(repo, "rev-parse", "main")
    assert res.source["url"] == url.replace("reader:tok3n@", "")
    assert res.notebook == _notebook("dumb") and res.requirements == ["pyvo"]
    assert len(_entries(tmp_path)) == 1


def test_credentials_in_url_are_not_shown(tmp_path):
    url = f"http://user:s3cret@127.0.0.1:{_free_port()}/repo.git"
    with pytest.raises(InvalidInput) as err:
        resolve_payload(Payload.from_dict({"name": "c", "url": url, "filepath": "a.ipynb"}), tmp_path, timeout=10)
    assert err.value.code == "payload_unreachable" and "s3cret" not in str(err.value)
    assert "s3cret" not in json.dumps(err.value.to_json())


def test_a_repository_named_without_a_notebook_opens_its_shallowest_one(server, tmp_path):
    # An OSSR workflow ESAP names by its repository alone (ESAP's Deploy: filepath ''): its notebook is found.
    server.make_repo("ossr", {"b/deep.ipynb": _notebook("print(2)"), "z_top.ipynb": _notebook("print(1)")})
    payload = Payload.from_dict({"name": "ossr", "url": server.url("ossr"), "ref": "main"}, esap=True)
    res = resolve_payload(payload, tmp_path)
    assert res.notebook_name == "z_top.ipynb" and b"print(1)" in res.notebook
    assert res.source["filepath"] == "z_top.ipynb"
    assert resolve_payload(payload, tmp_path).notebook == res.notebook  # from the cache entry
    server.make_repo("empty", {"README.md": b"no notebook"})
    empty = Payload.from_dict({"name": "e", "url": server.url("empty"), "ref": "main"}, esap=True)
    with pytest.raises(InvalidInput) as err:
        resolve_payload(empty, tmp_path)
    assert err.value.code == "payload_not_notebook" and "holds no notebook" in err.value.message
