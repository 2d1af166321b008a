"""Thin clone (issue 13): a handle's git tree leaves big catalogs out and says where they are; its cold build reads
only the central directory and the members that go into the tree, never the big catalog's stored object.

Real git over HTTP against the real Flask app (werkzeug, 127.0.0.1), S3 on the session's SeaweedFS where the
storage matters (the probe counts what the service reads from it).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from werkzeug.serving import make_server

from nbpack.bundle import remote
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.gitenv import git_env
from nbpack.hub.git import build_repo, ensure_repo
from nbpack.service.core import Service
from nbpack.store.backends import open_storage
from server import create_app
from tests.fixtures.hub import free_port
from tests.helpers import APP_API_KEY, load_runtime_package, make_config, reference_table, unload_runtime
from tests.unit.test_thin_clone import zip_with

BIG_ROWS = 4_500_000  # random float64: ~36 MB of Parquet that zstd cannot shrink
MB = 1 << 20


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """A real bundle: a ~36 MB catalog ``big`` and a tiny catalog ``small`` (built once per module)."""
    out = tmp_path_factory.mktemp("bundle") / "big.zip"
    big = pa.table({"x": np.random.default_rng(13).random(BIG_ROWS), "id": np.arange(BIG_ROWS, dtype=np.int64)})
    spec = BuildSpec(
        title="Thin clone",
        catalogs=[CatalogInput("big", big), CatalogInput("small", reference_table())],
    )
    manifest = build_bundle(spec, out)
    assert next(c for c in manifest["catalogs"] if c["name"] == "big")["bytes"] > 30 * MB
    return out, manifest


class CountingStorage:
    """The real storage, recording every object read and how many bytes came back (the probe)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.reads: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _count(self, key: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        self.reads.setdefault(key, 0)
        for chunk in chunks:
            self.reads[key] += len(chunk)
            yield chunk

    def iter_chunks(self, key: str, chunk_size: int = MB, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._count(key, self._inner.iter_chunks(key, chunk_size, start, end))

    def open(self, key: str) -> Any:
        data = self._inner.read_bytes(key)
        self.reads[key] = self.reads.get(key, 0) + len(data)
        return io.BytesIO(data)

    def read_bytes(self, key: str) -> bytes:
        data = self._inner.read_bytes(key)
        self.reads[key] = self.reads.get(key, 0) + len(data)
        return data

    def download_to(self, key: str, path: Path) -> Any:
        self.reads[key] = self.reads.get(key, 0) + self._inner.stat(key).size
        return self._inner.download_to(key, path)


def serve(storage_url: str, root: Path, *, wrap: bool = False, **config: str) -> tuple[str, Any, Any]:
    """The Flask app on a real 127.0.0.1 port: (base URL, service, server); ``wrap`` puts the probe on storage."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = make_config(root, public_url=base, storage=storage_url, **config)
    inner = open_storage(cfg.storage_url, endpoint_url=cfg.s3_endpoint, region=cfg.s3_region)
    svc = Service(cfg, CountingStorage(inner) if wrap else inner)
    server = make_server("127.0.0.1", port, create_app({"TESTING": True}, service=svc), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return base, svc, server


def push(base: str, bundle: Path) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}/api/v1/bundles",
        data=bundle.read_bytes(),
        headers={"Content-Type": "application/zip", "X-API-Key": APP_API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def clone(url: str, dest: Path) -> None:
    proc = subprocess.run(
        ["git", "clone", "-q", "--depth", "1", url, str(dest)],
        env={**git_env(), "HOME": str(dest.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tree_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}


# ---------------------------------------------------------------- the service, S3 storage


def test_thin_clone_from_s3_leaves_big_catalog_out_and_never_reads_it(
    big_bundle, s3_env, s3_bucket, tmp_path, monkeypatch
):
    bundle, built = big_bundle
    big = next(c for c in built["catalogs"] if c["name"] == "big")
    small = next(c for c in built["catalogs"] if c["name"] == "small")
    base, svc, server = serve(f"s3://{s3_bucket}/nbpack", tmp_path, wrap=True)
    try:
        created = push(base, bundle)
        hid = created["id"]
        handle = svc.handles.load(hid)
        big_part = [key for key, size in handle.parts if size > big["bytes"]]
        assert len(big_part) == 1  # the catalog's member record: one content object
        svc.storage.reads.clear()

        clone(created["links"]["git"], tmp_path / "clone")  # cold: the repository is built by this clone

        # The cold build never touched the catalog's object and read little at all (central directory, small files).
        assert big_part[0] not in svc.storage.reads
        assert sum(svc.storage.reads.values()) < 2 * MB, svc.storage.reads
        folder = tmp_path / "clone"
        assert not (folder / big["path"]).exists()
        assert (folder / small["path"]).is_file()
        files = tree_files(folder)
        with zipfile.ZipFile(bundle) as zf:
            kept = {n for n in zf.namelist() if not n.endswith("/")} - {big["path"]}
        stored_manifest = json.loads((folder / "nbpack.json").read_text())
        assert files == kept | {remote.REMOTE_FILE}
        assert any(f.startswith("nbpack_runtime/") for f in files) and stored_manifest["id"] == built["id"]
        for entry in stored_manifest["contents"]:
            if entry["path"] in files:
                assert hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
        doc = json.loads((folder / remote.REMOTE_FILE).read_text())
        assert doc == {remote.FILES: svc.access.files_url(handle, base), remote.LAZY: [big["path"]]}
        assert doc["files"].startswith(f"{base}/files/") and doc["files"].endswith(f"/{hid}/")
        # ...and that URL serves the catalog the tree left out (what the runtime's lazy reader asks for).
        ranged = urllib.request.Request(doc["files"] + big["path"], headers={"Range": "bytes=-8"})
        with urllib.request.urlopen(ranged, timeout=60) as resp:
            assert resp.status == 206 and resp.read()[-4:] == b"PAR1"
            assert resp.headers["Content-Range"] == f"bytes {big['bytes'] - 8}-{big['bytes'] - 1}/{big['bytes']}"
        # The user's folder (work tree + .git) stays small beside a 30+ MB catalog.
        assert folder_bytes(folder) < 10 * MB < 30 * MB < big["bytes"]

        # The clone's own runtime finds the left-out catalog through nbpack.remote.json and reads it from the service.
        monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "runtime-cache"))
        rt = load_runtime_package("nbpack_runtime_thin_clone", folder / "nbpack_runtime")
        try:
            opened = rt.start(str(folder))
            with zipfile.ZipFile(bundle) as zf:
                whole = pq.read_table(io.BytesIO(zf.read(big["path"])))
            assert opened.catalog("big", columns=["x"]).equals(whole.select(["x"]))
            assert opened.catalog("small").num_rows == small["rows"]
        finally:
            unload_runtime("nbpack_runtime_thin_clone")
        assert folder_bytes(folder) < 10 * MB  # the lazy cache lives outside the working tree

        # The zip download is unchanged: complete, every member as the manifest says.
        with urllib.request.urlopen(created["links"]["download"], timeout=120) as resp:
            data = resp.read()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            manifest = json.loads(zf.read("nbpack.json"))
            names = {n for n in zf.namelist() if not n.endswith("/")}
            assert big["path"] in names
            for entry in manifest["contents"]:
                assert hashlib.sha256(zf.read(entry["path"])).hexdigest() == entry["sha256"], entry["path"]
            assert names == {e["path"] for e in manifest["contents"]} | {"nbpack.json"}
    finally:
        server.shutdown()


def test_thin_clone_then_fetch_again_after_cache_loss(big_bundle, s3_env, s3_bucket, tmp_path):
    """A replica that rebuilds the repository (cache gone) builds the same commit: nbgitpuller's fetch is a no-op."""
    bundle, _ = big_bundle
    base, svc, server = serve(f"s3://{s3_bucket}/nbpack", tmp_path)
    try:
        created = push(base, bundle)
        folder = tmp_path / "clone"
        clone(created["links"]["git"], folder)
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
        svc.handles.drop_cache(created["id"])
        env = {**git_env(), "HOME": str(tmp_path)}
        fetch = subprocess.run(
            ["git", "-C", str(folder), "fetch", "-q", "origin"], env=env, capture_output=True, text=True, timeout=120
        )
        assert fetch.returncode == 0, fetch.stderr
        remote_head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "origin/main"], capture_output=True, text=True
        ).stdout
        assert remote_head == head.stdout
    finally:
        server.shutdown()


# ---------------------------------------------------------------- threshold 0, local storage


def test_threshold_zero_leaves_nothing_out(big_bundle, tmp_path):
    bundle, built = big_bundle
    base, _svc, server = serve(str(tmp_path / "store"), tmp_path, lazy_min_bytes="0")
    try:
        created = push(base, bundle)
        clone(created["links"]["git"], tmp_path / "clone")
    finally:
        server.shutdown()
    files = tree_files(tmp_path / "clone")
    assert remote.REMOTE_FILE not in files
    with zipfile.ZipFile(bundle) as zf:
        assert files == {n for n in zf.namelist() if not n.endswith("/")}
    big = next(c for c in built["catalogs"] if c["name"] == "big")
    assert hashlib.sha256((tmp_path / "clone" / big["path"]).read_bytes()).hexdigest() == big["sha256"]


# ---------------------------------------------------------------- build_repo and the ranged reader


def _ls_tree(repo: Path) -> dict[str, bytes]:
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "main"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        n: subprocess.run(["git", "cat-file", "blob", f"main:{n}"], cwd=repo, capture_output=True, check=True).stdout
        for n in names
    }


def test_build_repo_remote_document_wins_and_only_catalogs_are_left_out(tmp_path):
    members = {
        "catalogs/a.parquet": b"A" * 2000,
        "catalogs/b.parquet": b"B" * 999,
        "catalogs/c.parquet": b"C" * 1000,  # exactly the threshold: left out
        "catalogs/a.parquet.blocks": b"\0" * 64,
        "data/big.bin": b"D" * 5000,  # large, but no catalog: stays
        remote.REMOTE_FILE: b'{"files": "https://evil.example/"}',
    }
    manifest = {"id": "b-" + "1" * 24, "catalogs": [{"path": f"catalogs/{c}.parquet"} for c in "abc"]}
    zip_with(tmp_path / "b.zip", members, manifest)
    rem = remote.Remote("http://127.0.0.1:1/files/tok/h-" + "2" * 24 + "/", 1000)
    build_repo(tmp_path / "b.zip", tmp_path / "r.git", remote=rem)
    tree = _ls_tree(tmp_path / "r.git")
    kept = {"nbpack.json", "catalogs/b.parquet", "catalogs/a.parquet.blocks", "data/big.bin", remote.REMOTE_FILE}
    assert set(tree) == kept
    assert json.loads(tree[remote.REMOTE_FILE]) == {
        "files": rem.files,
        "lazy": ["catalogs/a.parquet", "catalogs/c.parquet"],
    }
    # Same bundle, same remote: same commit (replicas agree).
    assert build_repo(tmp_path / "b.zip", tmp_path / "r2.git", remote=rem) == build_repo(
        tmp_path / "b.zip", tmp_path / "r3.git", remote=rem
    )


def test_ensure_repo_spools_a_stream_that_cannot_seek(tmp_path):
    members = {"catalogs/a.parquet": b"A" * 2000, "notebook.ipynb": b"{}"}
    bid = "h-" + "3" * 24
    zip_with(tmp_path / "b.zip", members, {"id": bid, "catalogs": [{"path": "catalogs/a.parquet"}]})

    class OneWay(io.RawIOBase):
        def __init__(self, f: Any) -> None:
            self.f = f

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            data = self.f.read(len(buf))
            buf[: len(data)] = data
            return len(data)

    repo = ensure_repo(lambda: OneWay(open(tmp_path / "b.zip", "rb")), bid, tmp_path, remote=remote.Remote("u/", 100))
    assert set(_ls_tree(repo)) == {"nbpack.json", "notebook.ipynb", remote.REMOTE_FILE}
    assert not list((tmp_path / "git").glob(".*.zip"))  # the spool is gone


# ---------------------------------------------------------------- one vocabulary, two sides of the wall
