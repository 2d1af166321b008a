"""Test helpers for the bundle foundation tests: reference tables, input files, a file server, a fresh venv."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
from flask import Flask

from nbpack.bundle.returns import return_id_for
from nbpack.config import Config, load_config
from server import create_app

REPO = Path(__file__).resolve().parent.parent
# The runtime package as nbpack ships it; a bundle holds a copy at its root (``import nbpack_runtime``).
RUNTIME_DIR = REPO / "nbpack" / "runtime" / "nbpack_runtime"
FRESH_REQUIREMENTS = ("pyarrow", "ipykernel", "nbclient")
# The in-process service of the Flask-client tests (tests/conftest.py's app, client, runner).
APP_SECRET = "test-secret-" + "k" * 24
APP_API_KEY = "test-api-key-1"
UNITS = {"ra": {"unit": "deg", "ucd": "pos.eq.ra", "description": "Right ascension"}}


def reference_table() -> pa.Table:
    """A small table with ints, floats, booleans and strings, each with a null somewhere but the id."""
    return pa.table(
        {
            "source_id": pa.array([1, 2, 3, 4], pa.int64()),
            "ra": pa.array([10.5, 11.25, None, 13.0], pa.float64()),
            "flag": pa.array([True, False, None, True]),
            "name": pa.array(["a", None, "c,d", "é"]),
        }
    )


def esap_page() -> dict:
    """One ESAP query page in the IVOA row shape (fields + comma-joined result)."""
    fields = [
        {"name": "id", "datatype": "long", "ucd": "meta.id"},
        {"name": "mag", "datatype": "float", "ucd": "phot.mag"},
        {"name": "dist", "datatype": "double", "unit": "pc"},
        {"name": "label", "datatype": "char"},
    ]
    rows = ["1,12.5,100.25,ab", "2,,,", '3,13.25,1e3,"x, y"']
    return {
        "requested_page": 1,
        "pages": 1,
        "count": 3,
        "results": [
            {
                "dataset": "gaia.dr3",
                "query": "SELECT * FROM gaia",
                "result": r,
                "fields": fields,
                "title": "t",
                "url": "u",
            }
            for r in rows
        ],
    }


ESAP_EXPECTED = [
    {"id": 1, "mag": 12.5, "dist": 100.25, "label": "ab"},
    {"id": 2, "mag": None, "dist": None, "label": None},
    {"id": 3, "mag": 13.25, "dist": 1000.0, "label": "x, y"},
]
ESAP_TYPES = ["int64", "float", "double", "string"]


def astropy_table():  # noqa: ANN201 - astropy is optional for the package, present in the test venv
    """The reference table as an astropy Table with masked nulls and a unit on ``ra``."""
    from astropy.table import MaskedColumn, Table

    t = Table()
    t["source_id"] = [1, 2, 3, 4]
    t["ra"] = MaskedColumn([10.5, 11.25, 0.0, 13.0], mask=[False, False, True, False], unit="deg")
    t["ra"].meta["ucd"] = "pos.eq.ra"
    t["flag"] = MaskedColumn([True, False, False, True], mask=[False, False, True, False])
    t["name"] = MaskedColumn(["a", "", "c,d", "é"], mask=[False, True, False, False])
    return t


def write_inputs(folder: Path) -> dict[str, Path]:
    """The reference table written as every file kind a catalog can come from; kind → path."""
    folder.mkdir(parents=True, exist_ok=True)
    ref = reference_table()
    paths = {
        "parquet": folder / "t.parquet",
        "arrow": folder / "t.arrow",
        "csv": folder / "t.csv",
        "jsonrows": folder / "t.json",
        "esap": folder / "page.json",
        "votable": folder / "t.vot",
    }
    pq.write_table(ref, paths["parquet"])
    feather.write_feather(ref, paths["arrow"])
    pcsv.write_csv(ref, paths["csv"])
    paths["jsonrows"].write_text(json.dumps(ref.to_pylist()), "utf-8")
    paths["esap"].write_text(json.dumps(esap_page()), "utf-8")
    astropy_table().write(paths["votable"], format="votable", overwrite=True)
    return paths


def template_notebook(*sources: str, parameters: str | None = None) -> bytes:
    """A template notebook of code cells, optionally led by a papermill ``parameters`` cell."""
    nb = nbformat.v4.new_notebook()
    cells = []
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    for i, cell in enumerate(cells):
        cell["id"] = f"t{i}"
    nb.cells = cells
    return nbformat.writes(nb).encode("utf-8")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over plain HTTP on 127.0.0.1 (a free port); yields the base URL."""
    with serving(functools.partial(_QuietHandler, directory=str(folder))) as url:
        yield url


@contextlib.contextmanager
def serving(handler: Any) -> Iterator[str]:
    """Run an ``http.server`` handler class on 127.0.0.1 (a free port), threaded; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def rewrite_zip(
    src: Path, dst: Path, change: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None
) -> None:
    """Copy a zip entry by entry, replacing some members' bytes and appending raw extra entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = (change or {}).get(info.filename, zin.read(info))
            zout.writestr(info, data)
        for name, data in (extra or {}).items():
            zout.writestr(zipfile.ZipInfo(name), data)


def fresh_venv(timeout: float = 600) -> Path:
    """A virtualenv with only FRESH_REQUIREMENTS (no nbpack), cached under .cache/ keyed by them."""
    key = hashlib.sha256(f"{sys.version_info[:2]} {' '.join(FRESH_REQUIREMENTS)}".encode()).hexdigest()[:12]
    cache = REPO / ".cache"
    cache.mkdir(exist_ok=True)
    # Built at its real path: a venv's scripts and kernelspec name the path it was made at, and .cache may be a
    # symlink shared by several checkouts (a venv made through one that is later deleted names a missing python).
    venv = cache.resolve() / f"fresh-venv-{key}"
    done = venv / ".complete"
    stamp = f"{' '.join(FRESH_REQUIREMENTS)}\n{venv}\n"
    # Several test processes may race to create it: one builds, the others wait on the lock.
    with open(cache / f"fresh-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file() or done.read_text() != stamp:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            py = str(venv / "bin" / "python")
            subprocess.run(
                [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *FRESH_REQUIREMENTS],
                check=True,
                timeout=timeout,
            )
            subprocess.run(
                [py, "-m", "ipykernel", "install", "--prefix", str(venv), "--name", "python3"],
                check=True,
                timeout=120,
                capture_output=True,
            )
            done.write_text(stamp)
    return venv


# Preamble of `python -c` scripts that use the runtime copied into an unpacked bundle folder, as a notebook
# does, without importing nbpack; each load_runtime() call gives a fresh module (fresh run state).
RUNTIME_PREAMBLE = """\
import importlib.util, json, os, random, shutil, sys


def load_runtime(folder):
    for name in [k for k in sys.modules if k == "nbpack_runtime" or k.startswith("nbpack_runtime.")]:
        del sys.modules[name]
    package = folder + "/nbpack_runtime"
    spec = importlib.util.spec_from_file_location("nbpack_runtime", package + "/__init__.py",
                                                  submodule_search_locations=[package])
    rt = importlib.util.module_from_spec(spec)
    sys.modules["nbpack_runtime"] = rt
    spec.loader.exec_module(rt)
    return rt

"""

# argv: bundle folder, return zip. Prints "ANSWER <json>" with the service's answer to the runtime's upload().
UPLOAD_SCRIPT = (
    RUNTIME_PREAMBLE
    + """\
folder, path = sys.argv[1], sys.argv[2]
rt = load_runtime(folder)
rt.start(folder)
print("ANSWER " + json.dumps(rt.upload(path)), flush=True)
"""
)


def app_settings(root: Path, **config: object) -> dict[str, object]:
    """The NBPACK_* keys of an in-process test service over a fresh store under ``root``; ``config`` adds or
    replaces keys."""
    return {
        "public_url": "http://localhost",
        "storage": str(root / "store"),
        "cache_dir": str(root / "cache"),
        "secret_key": APP_SECRET,
        "api_keys": APP_API_KEY,
        **config,
    }


def make_config(root: Path, **config: object) -> Config:
    """``make_app``'s config without Flask, for tests that drive ``Service`` (or wrap its storage) themselves."""
    return load_config({}, app_settings(root, **config))


def return_manifest(bundle: dict[str, Any], files: dict[str, bytes], values: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid hand-made ``nbpack-return.json`` for ``files`` (the bundle's notebook and ``outputs/…``): every file
    hashed, its id derived, no kernel needed."""
    contents = [{"path": p, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in sorted(files.items())]
    doc = {
        "format": "nbpack-return",
        "format_version": "1.0",
        "bundle_id": bundle["id"],
        "status": "completed",
        "error": None,
        "started": "2024-01-01T00:00:00Z",
        "ended": "2024-01-01T00:01:00Z",
        "notebook": bundle["payload"]["notebook"],
        "outputs": [c for c in contents if c["path"].startswith("outputs/")],
        "values": values,
        "provenance": {"python": "3.11", "host": "test"},
        "contents": contents,
    }
    doc["id"] = return_id_for(doc)
    return doc


def make_app(root: Path, **config: object) -> Flask:
    """The service app over a fresh store under ``root`` (flaskr style); ``config`` adds or replaces NBPACK_* keys."""
    return create_app({"TESTING": True, **app_settings(root, **config)})


def load_runtime_package(name: str, package: Path = RUNTIME_DIR) -> ModuleType:
    """A fresh copy of the runtime package (its own run state) imported as ``name``; unload_runtime() drops it."""
    unload_runtime(name)
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its modules import each other under this name; dataclasses look it up
    spec.loader.exec_module(module)
    return module


def unload_runtime(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def wait_for_returns(client: Any, handle: str, seconds: float = 60) -> list[dict]:
    """The handle's returns once there is at least one, polled (bounded) for ``seconds``: a notebook's results cell
    uploads on its own time, after the page shows "uploaded"."""
    deadline = time.monotonic() + seconds
    returns: list[dict] = []
    for _ in range(int(seconds / 0.5) + 1):
        returns = client.returns(handle)
        if returns or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return returns


# Runs a notebook as a bare Jupyter would: nbclient, the environment's python3 kernel, cwd = the notebook's folder.
# argv: notebook path, folder, timeout per cell in seconds.
NBCLIENT_DRIVER = """
import sys, nbformat
from nbclient import NotebookClient
path, folder, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, path)
"""


def run_notebook_in(python: Path, notebook: Path, env: dict[str, str], cell_timeout: int = 180) -> None:
    """Run ``notebook`` in its own folder with ``python``'s nbclient and python3 kernel (NBCLIENT_DRIVER), in ``env``
    (see clean_env), bounded; fails the test with the end of stderr unless it ran to the end."""
    run = subprocess.run(
        [str(python), "-c", NBCLIENT_DRIVER, str(notebook), str(notebook.parent), str(cell_timeout)],
        cwd=notebook.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=cell_timeout + 120,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def clean_env(tmp_path: Path, path_dirs: list[Path]) -> dict[str, str]:
    """An environment with no way back to the repository or the test venv (no PYTHON*, VIRTUAL_ENV, JUPYTER*, NBPACK*
    variables; PATH only ``path_dirs`` and the system's), with its own HOME, Jupyter folders and nbpack cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "NBPACK"))}
    env.update(
        PATH=":".join(str(d) for d in path_dirs) + ":/usr/bin:/bin",
        HOME=str(tmp_path / "home"),
        JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jrun"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jconf"),
        IPYTHONDIR=str(tmp_path / "ipy"),
        NBPACK_CACHE=str(tmp_path / "cache"),
        NBPACK_RETRY_DELAY="0.05",
    )
    return env


def kernel_notebook(heading: str | None, *code: str) -> nbformat.NotebookNode:
    """A python3-kernel notebook: a markdown ``heading`` cell (unless None), then one code cell per ``code``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_markdown_cell(heading)] if heading is not None else []
    nb.cells = cells + [nbformat.v4.new_code_cell(source) for source in code]
    return nb


def app_with_hub(root: Path, hub_toml: str, title: str) -> tuple[Any, dict[str, Any]]:
    """A test client of a service whose registry is ``hub_toml`` (one ``[[hubs]]`` table's body) and the create
    answer of a one-catalog bundle titled ``title`` made through its API."""
    hubs = root / "hubs.toml"
    hubs.write_text(f"[[hubs]]\n{hub_toml}")
    client = make_app(root, hubs_file=str(hubs)).test_client()
    created = client.post(
        "/api/v1/bundles",
        json={"title": title, "catalogs": [{"name": "s", "rows": [{"a": 1}]}]},
        headers={"Authorization": f"Bearer {APP_API_KEY}"},
    ).get_json()
    return client, created
