"""Benchmark ``clone``: `git clone` of a bundle through nbpack's git endpoint vs textbook `git http-backend`.

Both sides serve the same bare repository (built once per size from a bundle-like zip holding an
incompressible blob) from a threaded werkzeug server on 127.0.0.1 in the variant's own process; only the
bridge differs: nbpack's streaming ``git_app.make_wsgi_app`` against a CGI bridge that buffers the whole
request and response (the baseline of tests/integration/test_gitrepo.py). Shallow clones are what nbgitpuller does.

Thin tree (issue 13): the size is a catalog's; ``thin_cold`` clones a bundle holding it on an empty cache with
the service's threshold (catalogs of ``LAZY_MIN_BYTES`` or more stay out of git), against the same bundle without
that catalog and with a 1 MB one, and reports the clone folder's size. Above ``RANDOM_MAX`` the catalog is a
sparse run of zeros (a 10 GiB case costs no disk); the cold build never reads it either way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Benchmark, Case, Variant
from nbpack.bundle.remote import Remote
from nbpack.gitenv import git_env

__all__ = ["BENCHMARK", "prepare", "make_bundle_zip", "cgi_app"]

BID = "b-0123456789abcdef01234567"
# The service's own git hardening (nbpack/gitenv.py), and no home folder for the client either.
GIT_ENV = {**git_env(), "HOME": "/nonexistent"}
GIT_TIMEOUT = 1200
LAZY_MIN_BYTES = 4 << 20  # the service's default NBPACK_LAZY_MIN_BYTES
# Cases above this size run only the thin-tree variants, with a sparse catalog (no 10 GiB of random bytes).
RANDOM_MAX = 2 << 30
RUNTIME_DIR = Path(__file__).resolve().parent.parent / "nbpack" / "runtime" / "nbpack_runtime"


def make_bundle_zip(path: Path, size: int) -> None:
    """A bundle-like zip (manifest, notebook, catalog stand-in, a `size`-byte random blob)."""
    entries = {
        "nbpack.json": json.dumps(
            {"format": "1.0", "id": BID, "title": "clone benchmark", "created": "2026-11-25T10:00:00Z"}
        ).encode(),
        "analysis.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode(),
        "catalogs/stars.parquet": b"PAR1" + bytes(range(256)) * 40 + b"PAR1",
    }
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), entries[name], zipfile.ZIP_DEFLATED)
        # Random bytes: git cannot compress them, so the clone moves the full size over HTTP.
        with zf.open(zipfile.ZipInfo("data/blob.bin", (1980, 1, 1, 0, 0, 0)), "w", force_zip64=True) as out:
            left = size
            while left > 0:
                chunk = os.urandom(min(left, 1 << 20))
                out.write(chunk)
                left -= len(chunk)
    os.replace(tmp, path)


class _Holes:
    """A file whose writes of ``zero`` become holes: a sparse zip member that zipfile still CRCs and sizes."""

    def __init__(self, f: Any, zero: bytes) -> None:
        self._f, self._zero = f, zero

    def write(self, data: Any) -> int:
        if data is self._zero:
            self._f.seek(len(data), os.SEEK_CUR)
            return len(data)
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def make_catalog_bundle_zip(path: Path, catalog_size: int | None) -> None:
    """A bundle with the real runtime's files, a small catalog and (unless None) a ``catalog_size``-byte one."""
    catalogs = [{"name": "small", "path": "catalogs/small.parquet", "bytes": 10248}]
    if catalog_size is not None:
        catalogs.append({"name": "big", "path": "catalogs/big.parquet", "bytes": catalog_size})
    manifest = {"format": "1.0", "id": BID, "title": "thin clone benchmark", "created": "2026-11-25T10:00:00Z"}
    entries = {
        "nbpack.json": json.dumps({**manifest, "catalogs": catalogs}).encode(),
        "analysis.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode(),
        "catalogs/small.parquet": b"PAR1" + bytes(range(256)) * 40 + b"PAR1",
        **{f"nbpack_runtime/{p.name}": p.read_bytes() for p in sorted(RUNTIME_DIR.glob("*.py"))},
    }
    tmp = path.with_name(path.name + ".tmp")
    zero = bytes(16 << 20)
    with open(tmp, "wb") as raw, zipfile.ZipFile(_Holes(raw, zero), "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            kind = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), entries[name], kind)
        if catalog_size is not None:
            info = zipfile.ZipInfo("catalogs/big.parquet", (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED  # as nbpack stores every .parquet
            with zf.open(info, "w", force_zip64=True) as out:
                left = catalog_size
                while left > 0:
                    if catalog_size > RANDOM_MAX:
                        chunk = zero if left >= len(zero) else bytes(left)
                    else:
                        chunk = os.urandom(min(left, 1 << 20))
                    out.write(chunk)
                    left -= len(chunk)
    os.replace(tmp, path)


def prepare(size: int, workdir: Path) -> Case:
    """Make the bundle zips and the cached repository of the blob bundle (the warm state of a running service)."""
    from nbpack.hub.git import ensure_repo

    params = {}
    for key, catalog_size in (("thin", size), ("nocat", None), ("cat1mb", 1_000_000)):
        params[key] = str(workdir / f"{key}.zip")
        if not Path(params[key]).is_file():
            make_catalog_bundle_zip(Path(params[key]), catalog_size)
    if size <= RANDOM_MAX:
        bundle = workdir / "bundle.zip"
        if not bundle.is_file():
            make_bundle_zip(bundle, size)
        cache = workdir / "cache"
        ensure_repo(lambda: open(bundle, "rb"), BID, cache)
        params.update({"bundle": str(bundle), "cache": str(cache)})
    return Case(size, params, size)


def cgi_app(root: Path) -> Callable:
    """A textbook CGI bridge to `git http-backend` (whole request and response in memory): the baseline."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length) if length else b""
        env = {
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ["PATH_INFO"],
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(length),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=data, env=env, capture_output=True, timeout=GIT_TIMEOUT
        ).stdout
        head, _, body = out.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [body]

    return app


def _serve(app: Callable) -> str:
    """Serve `app` from a daemon thread on a free 127.0.0.1 port (dies with the variant's process)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/{BID}.git"


def _clone(url: str, dest: Path, *extra: str, expect: str = "data/blob.bin") -> Callable[[], None]:
    def work() -> None:
        proc = subprocess.run(
            ["git", "clone", "-q", *extra, url, str(dest)],
            env=GIT_ENV,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
        if proc.returncode != 0 or not (dest / expect).is_file():
            raise RuntimeError(f"git clone {url} failed: {proc.stderr.strip()}")

    return work


def _endpoint(params: dict[str, Any], cold: bool = False) -> str:
    from nbpack.hub.git_app import make_wsgi_app

    cache = Path(params["tmp"]) / "cold-cache" if cold else Path(params["cache"])
    return _serve(make_wsgi_app(cache, lambda _bid: open(params["bundle"], "rb")))


def endpoint_shallow(params: dict[str, Any]) -> Callable[[], None]:
    """nbpack's endpoint, repository cached: `git clone --depth 1` (nbgitpuller's first pull)."""
    return _clone(_endpoint(params), Path(params["tmp"]) / "clone", "--depth", "1")


def endpoint_full(params: dict[str, Any]) -> Callable[[], None]:
    """nbpack's endpoint, repository cached: full `git clone`."""
    return _clone(_endpoint(params), Path(params["tmp"]) / "clone")


def endpoint_cold(params: dict[str, Any]) -> Callable[[], None]:
    """nbpack's endpoint on an empty cache: build the repository from the zip, then shallow clone."""
    return _clone(_endpoint(params, cold=True), Path(params["tmp"]) / "clone", "--depth", "1")


def backend_shallow(params: dict[str, Any]) -> Callable[[], None]:
    """Textbook `git http-backend` CGI over the same repository: `git clone --depth 1`."""
    return _clone(_serve(cgi_app(Path(params["cache"]) / "git")), Path(params["tmp"]) / "clone", "--depth", "1")


def backend_full(params: dict[str, Any]) -> Callable[[], None]:
    """Textbook `git http-backend` CGI over the same repository: full `git clone`."""
    return _clone(_serve(cgi_app(Path(params["cache"]) / "git")), Path(params["tmp"]) / "clone")


def file_floor(params: dict[str, Any]) -> Callable[[], None]:
    """No HTTP at all: `git clone --depth 1 file://` of the repository (the floor)."""
    repo = Path(params["cache"]) / "git" / f"{BID}.git"
    dest = Path(params["tmp"]) / "clone"
    shutil.rmtree(dest, ignore_errors=True)
    return _clone(f"file://{repo}", dest, "--depth", "1")


def _cold_thin(bundle: str, params: dict[str, Any]) -> Callable[[], Callable[[], dict[str, float]]]:
    """Empty cache, the service's thin tree: build the repository from the zip, then shallow clone."""
    from nbpack.hub.git_app import make_wsgi_app

    remote = Remote(f"http://127.0.0.1/files/bench/{BID}/", LAZY_MIN_BYTES)
    app = make_wsgi_app(Path(params["tmp"]) / "cold-cache", lambda _bid: open(bundle, "rb"), lambda _bid: remote)
    dest = Path(params["tmp"]) / "clone"
    work = _clone(_serve(app), dest, "--depth", "1", expect="analysis.ipynb")

    def timed() -> Callable[[], dict[str, float]]:
        work()
        # The user's folder: work tree and .git, as nbgitpuller leaves it.
        return lambda: {"folder_MB": sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) / 1e6}

    return timed


def thin_cold(params: dict[str, Any]) -> Callable[[], Callable[[], dict[str, float]]]:
    """Cold shallow clone of a bundle holding a `size` catalog (left out of git above 4 MiB); folder size."""
    return _cold_thin(params["thin"], params)


def nocat_cold(params: dict[str, Any]) -> Callable[[], Callable[[], dict[str, float]]]:
    """The same bundle without that catalog, cold."""
    return _cold_thin(params["nocat"], params)


def cat1mb_cold(params: dict[str, Any]) -> Callable[[], Callable[[], dict[str, float]]]:
    """The same bundle with a 1 MB catalog instead (in the tree), cold: the small end of 'independent of size'."""
    return _cold_thin(params["cat1mb"], params)


BENCHMARK = Benchmark(
    name="clone",
    description="git clone of a bundle: nbpack's git endpoint vs textbook git http-backend CGI, same repository",
    unit="bytes",
    small=[8 << 20],
    default=[100 << 20],
    prepare=prepare,
    variants=[
        Variant("endpoint_shallow", "bench.clone:endpoint_shallow", max_size=RANDOM_MAX),
        Variant("backend_shallow", "bench.clone:backend_shallow", "endpoint_shallow", 1.2, RANDOM_MAX, "CGI, buffered"),
        Variant("endpoint_full", "bench.clone:endpoint_full", max_size=RANDOM_MAX),
        Variant("backend_full", "bench.clone:backend_full", "endpoint_full", 1.2, RANDOM_MAX, "CGI, buffered"),
        Variant("endpoint_cold", "bench.clone:endpoint_cold", max_size=RANDOM_MAX, note="repo build + shallow clone"),
        Variant("file_floor", "bench.clone:file_floor", "endpoint_shallow", max_size=RANDOM_MAX, note="file://"),
        Variant("thin_cold", "bench.clone:thin_cold", figure_max={"folder_MB": 10}, note="catalog of `size`"),
        Variant("nocat_cold", "bench.clone:nocat_cold", "thin_cold", 1.5, note="same bundle, no catalog"),
        Variant("cat1mb_cold", "bench.clone:cat1mb_cold", "thin_cold", 1.5, note="same bundle, 1 MB catalog"),
    ],
)
