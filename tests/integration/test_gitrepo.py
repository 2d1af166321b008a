"""The git endpoint: deterministic repos from bundle zips, served to the plain git client over smart HTTP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from nbpack.errors import InvalidBundle, InvalidInput, UnsafeArchive
from nbpack.gitenv import git_env
from nbpack.hub.git import build_repo, ensure_repo
from nbpack.hub.git_app import make_wsgi_app
from nbpack.hub.git_http import http_backend

BID = "b-0123456789abcdef01234567"
# The service's own git hardening (nbpack/gitenv.py), and no home folder for the client either.
GIT_ENV = {**git_env(), "HOME": "/nonexistent"}


def make_bundle(path: Path, *, bid: str = BID, binary_mb: int = 3, extra: dict[str, bytes] | None = None) -> dict:
    """A bundle-like zip (manifest, notebook, catalog, binary blob); its entries by name."""
    entries = {
        "nbpack.json": json.dumps(
            {"format": "1.0", "id": bid, "title": "Test bundle", "created": "2026-11-25T10:00:00Z"}
        ).encode(),
        "analysis.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode(),
        "catalogs/stars.parquet": b"PAR1" + bytes(range(256)) * 40 + b"PAR1",
        "data/blob.bin": os.urandom(binary_mb << 20),
        'odd name "quoted"\\.txt'.replace("\\", ""): b"odd\n",
    }
    entries.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), entries[name], zipfile.ZIP_DEFLATED)
    return entries


def git(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the plain git client, bounded in time."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc


def assert_tree_matches(checkout: Path, entries: dict[str, bytes]) -> None:
    """Every zip entry is in the checkout byte for byte, and nothing else is (besides .git)."""
    found = {p.relative_to(checkout).as_posix() for p in checkout.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert found == set(entries)
    for name, data in entries.items():
        assert (checkout / name).read_bytes() == data, name


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, dict[str, bytes], Path]]:
    """A bundle served by ``make_wsgi_app`` on a threaded werkzeug server: (base URL, entries, cache dir)."""
    root = tmp_path_factory.mktemp("gitserve")
    bundle = root / "bundle.zip"
    entries = make_bundle(bundle)
    opened: list[str] = []

    def open_bundle(bid: str):
        opened.append(bid)
        if bid != BID:
            from nbpack.errors import NotFound

            raise NotFound(f"no bundle {bid}")
        return open(bundle, "rb")

    cache = root / "cache"
    server = make_server("127.0.0.1", 0, make_wsgi_app(cache, open_bundle), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", entries, cache
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert opened.count(BID) == 1, "the repo is built once and then served from the cache"


def test_build_is_deterministic_and_packed(tmp_path):
    bundle = tmp_path / "b.zip"
    make_bundle(bundle)
    sha1 = build_repo(bundle, tmp_path / "one.git")
    sha2 = build_repo(bundle, tmp_path / "two.git")
    assert sha1 == sha2 and len(sha1) == 40
    # a second build into an existing repo agrees instead of clobbering it
    assert build_repo(bundle, tmp_path / "one.git") == sha1
    log = git("log", "-1", "--format=%an <%ae>|%at|%s|%b", cwd=tmp_path / "one.git").stdout.strip()
    assert log.startswith("nbpack <nbpack@invalid>|1795600800|Test bundle|")
    assert BID in log
    counts = dict(line.split(": ") for line in git("count-objects", "-v", cwd=tmp_path / "one.git").stdout.splitlines())
    assert counts["count"] == "0" and counts["packs"] == "1"
    assert not list((tmp_path).glob(".*tmp-*")), "temp build dirs are cleaned up"


def test_no_manifest_falls_back_to_epoch(tmp_path):
    bundle = tmp_path / "plain.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("a.txt", "a")
    build_repo(bundle, tmp_path / "r.git", branch="pages")
    assert git("log", "-1", "--format=%at", "pages", cwd=tmp_path / "r.git").stdout.strip() == "0"
    assert git("symbolic-ref", "HEAD", cwd=tmp_path / "r.git").stdout.strip() == "refs/heads/pages"


@pytest.mark.parametrize("name", ["/etc/passwd", "../up.txt", "a/../../b", "dir\\evil.txt", ".git/config", "a//b"])
def test_unsafe_entry_names_are_refused(tmp_path, name):
    bundle = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(zipfile.ZipInfo(name), "bad")
    with pytest.raises(UnsafeArchive):
        build_repo(bundle, tmp_path / "r.git")
    assert not (tmp_path / "r.git").exists()


def test_corrupt_entry_data_is_refused(tmp_path):
    bundle = tmp_path / "corrupt.zip"
    make_bundle(bundle, binary_mb=1)
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the 1 MiB random entry
    bundle.write_bytes(bytes(raw))
    with pytest.raises(InvalidBundle):
        build_repo(bundle, tmp_path / "r.git")
    assert not (tmp_path / "r.git").exists() and not list(tmp_path.glob(".r.git.tmp-*"))


def test_file_shadowing_a_directory_is_refused(tmp_path):
    bundle = tmp_path / "shadow.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("a", "file")
        zf.writestr("a/b", "under a file")
    with pytest.raises(UnsafeArchive):
        build_repo(bundle, tmp_path / "r.git")


def test_ensure_repo_concurrent_builders_agree(tmp_path):
    bundle = tmp_path / "b.zip"
    make_bundle(bundle, binary_mb=1)
    opens: list[int] = []

    def opener():
        opens.append(1)
        return io.BytesIO(bundle.read_bytes())

    # leftovers of a builder killed mid-way are cleared, not mistaken for a repo
    (tmp_path / "git" / f".{BID}.git.tmp-dead").mkdir(parents=True)
    (tmp_path / "git" / f".{BID}-dead.zip").write_bytes(b"partial")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_repo(opener, BID, tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 3 and len(set(results)) == 1
    assert opens == [1], "concurrent callers wait for the one builder"
    assert results[0] == tmp_path / "git" / f"{BID}.git"
    git("fsck", "--strict", cwd=results[0])
    assert sorted(p.name for p in (tmp_path / "git").iterdir()) == [f"{BID}.git", f"{BID}.lock"]
    with pytest.raises(InvalidInput):
        ensure_repo(opener, "../etc", tmp_path)


@pytest.mark.parametrize("version", ["0", "2"])
def test_shallow_clone_then_fetch_and_merge(served, tmp_path, version):
    base, entries, _ = served
    dest = tmp_path / "shallow"
    proto = ("-c", f"protocol.version={version}")
    git(*proto, "clone", "--depth", "1", f"{base}/{BID}.git", str(dest))
    assert_tree_matches(dest, entries)
    assert git("rev-parse", "--is-shallow-repository", cwd=dest).stdout.strip() == "true"
    # nbgitpuller's second click: fetch, then merge the remote branch into the local one
    git(*proto, "fetch", "origin", cwd=dest)
    git("-c", "user.name=u", "-c", "user.email=u@x", "merge", "--ff-only", "origin/main", cwd=dest)
    git(*proto, "fetch", "--depth", "1", "origin", "main", cwd=dest)
    git(*proto, "fetch", "--unshallow", "origin", cwd=dest)
    assert git("rev-parse", "--is-shallow-repository", cwd=dest).stdout.strip() == "false"
    assert_tree_matches(dest, entries)


def test_full_clone_and_protocol_v2(served, tmp_path):
    base, entries, cache = served
    full = tmp_path / "full"
    git("-c", "protocol.version=0", "clone", f"{base}/{BID}.git", str(full))
    assert_tree_matches(full, entries)
    sha = git("rev-parse", "HEAD", cwd=full).stdout.strip()
    assert sha == git("rev-parse", "HEAD", cwd=cache / "git" / f"{BID}.git").stdout.strip()
    v2 = tmp_path / "v2"
    proc = subprocess.run(
        ["git", "-c", "protocol.version=2", "clone", f"{base}/{BID}.git", str(v2)],
        env={**GIT_ENV, "GIT_TRACE_PACKET": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "git< version 2" in proc.stderr, "the server answered in protocol v2"
    assert_tree_matches(v2, entries)
    assert git("ls-remote", f"{base}/{BID}.git").stdout.split()[0] == sha


def test_push_is_refused(served, tmp_path):
    base, _, cache = served
    work = tmp_path / "w"
    git("clone", "--depth", "1", f"{base}/{BID}.git", str(work))
    (work / "new.txt").write_text("x")
    git("add", "new.txt", cwd=work)
    git("-c", "user.name=u", "-c", "user.email=u@x", "commit", "-m", "change", cwd=work)
    before = git("rev-parse", "main", cwd=cache / "git" / f"{BID}.git").stdout
    proc = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr
    assert git("rev-parse", "main", cwd=cache / "git" / f"{BID}.git").stdout == before


def test_unknown_paths_and_bundles(served):
    import urllib.error
    import urllib.request

    base, _, _ = served
    for path, code in [
        (f"/{BID}.git/objects/info/packs", 404),
        (f"/{BID}.git/config", 404),
        (f"/{BID}.git/info/refs", 404),  # dumb protocol is not served
        (f"/{BID}.git/info/refs?service=git-receive-pack", 403),
        ("/b-ffffffffffffffffffffffff.git/info/refs?service=git-upload-pack", 404),
        ("/nonsense", 404),
    ]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + path, timeout=30)
        assert err.value.code == code, path
    with urllib.request.urlopen(f"{base}/{BID}.git/HEAD", timeout=30) as resp:
        assert resp.read() == b"ref: refs/heads/main\n"


def test_http_backend_close_kills_unread_response(tmp_path):
    bundle = tmp_path / "b.zip"
    make_bundle(bundle, binary_mb=2)  # far more than a pipe holds, so git is still writing when we stop
    repo = tmp_path / "r.git"
    sha = build_repo(bundle, repo)
    want = f"0032want {sha}\n00000009done\n".encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-git-upload-pack-request",
        "CONTENT_LENGTH": str(len(want)),
        "wsgi.input": io.BytesIO(want),
    }
    status, headers, body = http_backend(environ, repo, "/git-upload-pack")
    assert status.startswith("200")
    assert ("Content-Type", "application/x-git-upload-pack-result") in headers
    first = next(iter(body))
    assert first  # the pack started streaming
    start = time.monotonic()
    body.close()  # client went away after one chunk
    assert body.proc.returncode == -9, "killed, not left running"
    assert time.monotonic() - start < 10


def test_http_backend_gzip_body_without_length(tmp_path):
    # git gzips larger upload-pack requests and streams very large ones chunked (no Content-Length)
    import gzip

    bundle = tmp_path / "b.zip"
    entries = make_bundle(bundle, binary_mb=0)
    repo = tmp_path / "r.git"
    sha = build_repo(bundle, repo)
    request = gzip.compress(f"0032want {sha}\n00000009done\n".encode())
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-git-upload-pack-request",
        "HTTP_CONTENT_ENCODING": "gzip",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input_terminated": True,
        "wsgi.input": io.BytesIO(request),
    }
    status, _, body = http_backend(environ, repo, "/git-upload-pack")
    try:
        data = b"".join(body)
    finally:
        body.close()
    assert status.startswith("200")
    assert data.startswith(b"0008NAK\n") and b"PACK" in data
    assert entries["nbpack.json"] in _unpack_blobs(data, tmp_path)
    assert body.proc.returncode == 0


def _unpack_blobs(response: bytes, tmp_path: Path) -> list[bytes]:
    """The blobs of the pack in an upload-pack answer, via ``git index-pack`` into a scratch repo."""
    scratch = tmp_path / "scratch.git"
    git("init", "--bare", "-q", str(scratch))
    pack = response[response.index(b"PACK") :]
    subprocess.run(["git", "unpack-objects", "-q"], input=pack, cwd=scratch, env=GIT_ENV, check=True, timeout=60)
    objs = git("cat-file", "--batch-all-objects", "--batch-check", cwd=scratch).stdout.split("\n")
    return [
        subprocess.run(
            ["git", "cat-file", "blob", line.split()[0]],
            cwd=scratch,
            env=GIT_ENV,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        for line in objs
        if " blob " in line
    ]


def test_stock_nbgitpuller_pulls_twice(served, tmp_path):
    # the very code a stock hub runs on each click of a launch link: depth-1 clone, then fetch + merge
    from nbgitpuller.pull import GitPuller

    base, entries, _ = served
    target = tmp_path / "pulled"
    puller = GitPuller(f"{base}/{BID}.git", str(target))  # no branch: resolved through HEAD's symref
    assert puller.branch_name == "main" and puller.depth == 1
    list(puller.pull())
    assert_tree_matches(target, entries)
    (target / "analysis.ipynb").write_text("user edit")
    list(GitPuller(f"{base}/{BID}.git", str(target), branch="main").pull())
    assert (target / "analysis.ipynb").read_text() == "user edit", "user edits win on the second pull"
    assert (target / "data" / "blob.bin").read_bytes() == entries["data/blob.bin"]


def _git_processes_in(repo: Path) -> list[str]:
    """Command lines of processes whose working directory is inside ``repo`` (Linux /proc)."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd).startswith(str(repo)):
                found.append((cwd.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_client_going_away_stops_git(tmp_path):
    import socket

    bundle = tmp_path / "b.zip"
    make_bundle(bundle, binary_mb=8)
    cache = tmp_path / "cache"
    repo = ensure_repo(lambda: open(bundle, "rb"), BID, cache)
    sha = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    server = make_server("127.0.0.1", 0, make_wsgi_app(cache, lambda bid: open(bundle, "rb")), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = f"0032want {sha}\n00000009done\n".encode()
        sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=30)
        sock.sendall(
            f"POST /{BID}.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/x-git-upload-pack-request\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")
        assert _git_processes_in(repo), "git is still sending the pack"
        sock.close()  # the client goes away mid-pack
        deadline = time.monotonic() + 15
        while _git_processes_in(repo) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _git_processes_in(repo), "git was stopped when the client left"
    finally:
        server.shutdown()
        thread.join(timeout=10)
