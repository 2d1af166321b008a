"""The notebook carries the bundle: links.notebook downloaded alone runs where only pyarrow and a kernel exist.

A real service (gunicorn, local storage) serves the notebook over HTTP; the notebook is fetched alone into an empty
folder and run there (a fresh venv with pyarrow, ipykernel and nbclient; `jupyter nbconvert --execute`); its catalogs
must equal the bundle's, its return must reach the service. A service whose runtime is not the pinned one is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from nbpack.bundle import lone
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, bundle_id_for
from nbpack.bundle.lone import runtime_pin
from nbpack.client import Client
from tests.fixtures.service import service_env
from tests.helpers import clean_env, file_server, fresh_venv, rewrite_zip, run_notebook_in, template_notebook

API_KEY = "lone-api-key-0123456789"
NOTEBOOK = "lone.ipynb"

# The notebook's own cell: each catalog as the runtime gave it, written whole (schema metadata included) as Arrow IPC.
CHECK = """\
import sys
import pyarrow as pa
for name, table in catalogs.items():
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    nbpack_runtime.save_output(sink.getvalue().to_pybytes(), f"{name}.arrow")
nbpack_runtime.save_value("prefix", sys.prefix)
nbpack_runtime.save_value("runtime_file", nbpack_runtime.__file__)"""


def awkward_table() -> pa.Table:
    """ids above 2^53, NaN beside null, tz-aware times, unicode with commas."""
    return pa.table(
        {
            "source_id": pa.array([2**53 + 1, 2**62 + 7, -(2**60) - 3], pa.int64()),
            "flux": pa.array([float("nan"), None, 1.5], pa.float64()),
            "seen": pa.array(
                [datetime(2024, 1, 1, 12, 0, tzinfo=UTC), None, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "name": pa.array(["α Cen, A", None, 'quote "x", comma']),
        }
    )


def _build(tmp_path: Path, title: str) -> Path:
    out = tmp_path / f"{title}.zip"
    big = pa.table({"i": pa.array(range(50_000), pa.int64()), "x": pa.array([i / 7 for i in range(50_000)])})
    build_bundle(
        BuildSpec(
            title=title,
            catalogs=[
                CatalogInput("sources", awkward_table(), columns={"flux": {"unit": "Jy"}}),
                CatalogInput("big", big),
            ],
            notebook=template_notebook(CHECK),
            notebook_name=NOTEBOOK,
        ),
        out,
    )
    return out


def _fetch_alone(url: str, folder: Path) -> Path:
    """Download links.notebook into an empty folder, named from the URL path as a browser would."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=30) as answer:
        target.write_bytes(answer.read())
    return target


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas (field and table metadata included) and equal values, NaN equal to NaN and not to null."""

    def rows(t: pa.Table) -> list:
        return [
            {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in t.to_pylist()
        ]

    return a.schema.equals(b.schema, check_metadata=True) and rows(a) == rows(b)


def _catalogs_of(zip_path: Path) -> dict[str, pa.Table]:
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("nbpack.json"))
        return {c["name"]: pq.read_table(pa.BufferReader(zf.read(c["path"]))) for c in manifest["catalogs"]}


def _check_run(client: Client, hid: str, folder: Path, bundle_zip: Path, cache: Path) -> dict:
    """The run's return: in the folder, sent to the service, its catalogs equal to the bundle's."""
    returns = sorted(folder.glob("nbpack-return-*.zip"))
    assert len(returns) == 1, sorted(p.name for p in folder.iterdir())
    listed = client.returns(hid)
    assert [r["id"] for r in listed] == [returns[0].name.removeprefix("nbpack-return-").removesuffix(".zip")]
    assert listed[0]["status"] == "completed"
    manifest = client.get_return(hid, listed[0]["id"])
    values = {v["name"]: v["data"] for v in manifest["values"]}
    expected = _catalogs_of(bundle_zip)
    with zipfile.ZipFile(returns[0]) as zf:
        for name, table in expected.items():
            got = pa.ipc.open_file(pa.BufferReader(zf.read(f"outputs/{name}.arrow"))).read_all()
            assert _same(got, table), name
        assert NOTEBOOK in zf.namelist()
    # Nothing but the notebook and what the run wrote lands beside it: runtime and manifest live in the cache.
    assert sorted(p.name for p in folder.iterdir()) == sorted([NOTEBOOK, "outputs", returns[0].name])
    assert Path(values["runtime_file"]).resolve().is_relative_to((cache / "runtime").resolve())
    return values


@pytest.fixture
def service(start_service, tmp_path):
    return start_service(service_env(str(tmp_path / "store"), API_KEY, cache_dir=str(tmp_path / "service-cache")))


def test_lone_notebook_runs_in_a_fresh_venv_with_only_pyarrow(service, tmp_path: Path) -> None:
    venv = fresh_venv()
    client = Client(service.url, API_KEY, timeout=60)
    bundle_zip = _build(tmp_path, "Lone fresh")
    created = client.push(bundle_zip)
    hid = created["id"]
    folder = tmp_path / "downloads"
    notebook = _fetch_alone(created["links"]["notebook"], folder)
    assert notebook.name == NOTEBOOK
    env = clean_env(tmp_path, [venv / "bin"])
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import nbpack"], cwd=folder, env=env, capture_output=True
    )
    assert probe.returncode != 0, "the fresh venv must not see nbpack"
    run_notebook_in(venv / "bin" / "python", notebook, env)
    values = _check_run(client, hid, folder, bundle_zip, tmp_path / "cache")
    assert Path(values["prefix"]).resolve() == venv.resolve()
    # The bootstrap cell showed the bundle's summary.
    ran = nbformat.read(notebook, as_version=4)
    boot = next(c for c in ran.cells if "nbpack-bootstrap" in c.metadata.get("tags", []))
    shown = "".join(o.get("text", "") + o.get("data", {}).get("text/html", "") for o in boot.outputs)
    assert "sources: 3 rows" in shown and "big: 50000 rows" in shown


def _run_in(tmp_path: Path, folder: Path, argv: list[str], stdin: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``folder`` with only the test venv's commands on PATH (clean_env), bounded; it must succeed."""
    run = subprocess.run(
        argv,
        input=stdin.read_text() if stdin else None,
        cwd=folder,
        env=clean_env(tmp_path, [Path(sys.executable).parent]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _jupyter(tmp_path: Path, folder: Path, args: list[str], stdin: Path | None = None) -> subprocess.CompletedProcess:
    return _run_in(tmp_path, folder, [sys.executable, "-m", "jupyter", *args], stdin)


def _run_fetched(service, tmp_path: Path, title: str, argv: list[str]) -> tuple[Client, str]:
    """Push a bundle, fetch its notebook alone into an empty folder and run ``argv`` (``{nb}``: the notebook) there,
    with only the test venv's commands on PATH; the run's return checked. The client and the handle id."""
    client = Client(service.url, API_KEY, timeout=60)
    bundle_zip = _build(tmp_path, title)
    created = client.push(bundle_zip)
    folder = tmp_path / "work"
    notebook = _fetch_alone(created["links"]["notebook"], folder)
    _run_in(tmp_path, folder, [arg.format(nb=notebook.name) for arg in argv])
    _check_run(client, created["id"], folder, bundle_zip, tmp_path / "cache")
    return client, created["id"]


def test_lone_notebook_runs_under_jupyter_nbconvert_execute(service, tmp_path: Path) -> None:
    nbconvert = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace", "{nb}"]
    _run_fetched(service, tmp_path, "Lone nbconvert", nbconvert)


def test_lone_notebook_runs_under_papermill(service, tmp_path: Path) -> None:
    out = tmp_path / "out" / "ran.ipynb"
    out.parent.mkdir()
    client, hid = _run_fetched(
        service, tmp_path, "Lone papermill", [sys.executable, "-m", "papermill", "{nb}", str(out), "-k", "python3"]
    )
    (listed,) = client.returns(hid)
    # The return carries papermill's output notebook (found from papermill's command line), not the input.
    assert client.get_return(hid, listed["id"])["provenance"]["notebook_file"]["source"] == "papermill"


def _tampered(tmp_path: Path, bundle_zip: Path) -> Path:
    """The same bundle with one runtime module changed and the manifest made consistent with it (id included)."""
    with zipfile.ZipFile(bundle_zip) as zf:
        manifest = json.loads(zf.read("nbpack.json"))
        module = zf.read("nbpack_runtime/base.py") + b"\nprint('not the runtime you pinned')\n"
    for entry in manifest["contents"]:
        if entry["path"] == "nbpack_runtime/base.py":
            entry["sha256"], entry["bytes"] = hashlib.sha256(module).hexdigest(), len(module)
    manifest["id"] = bundle_id_for(manifest)
    out = tmp_path / "tampered.zip"
    body = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    rewrite_zip(bundle_zip, out, change={"nbpack_runtime/base.py": module, "nbpack.json": body})
    return out


def test_a_runtime_other_than_the_pinned_one_is_refused(service, tmp_path: Path) -> None:
    client = Client(service.url, API_KEY, timeout=60)
    bundle_zip = _build(tmp_path, "Lone tampered")
    created = client.push(_tampered(tmp_path, bundle_zip))
    folder = tmp_path / "work"
    notebook = _fetch_alone(created["links"]["notebook"], folder)
    nb = nbformat.read(notebook, as_version=4)
    cache = tmp_path / "cache"
    os.environ["NBPACK_CACHE"] = str(cache)
    try:
        with pytest.raises(CellExecutionError) as raised:
            NotebookClient(
                nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
            ).execute()
    finally:
        del os.environ["NBPACK_CACHE"]
    boot = next(c for c in nb.cells if "nbpack-bootstrap" in c.metadata.get("tags", []))
    (error,) = [o for o in boot.outputs if o["output_type"] == "error"]
    # One clear line in the notebook, no traceback; nothing of the refused runtime was written or run.
    assert error["ename"] == "NbpackRefused"
    assert len(error["traceback"]) == 1
    assert error["traceback"][0].startswith("nbpack: error: the service's runtime (")
    assert "is not the one this notebook was built with" in error["traceback"][0]
    assert "not the runtime you pinned" not in str(raised.value)
    assert not (cache / "runtime").exists() or not any((cache / "runtime").rglob("*.py"))
    # The pin the notebook carries is the pin of the runtime nbpack built it with.
    with zipfile.ZipFile(bundle_zip) as zf:
        good = runtime_pin((c["path"], c["sha256"]) for c in json.loads(zf.read("nbpack.json"))["contents"])
    assert f'NBPACK_RUNTIME_PIN = "{good}"' in "".join(boot.source)
    assert client.returns(created["id"]) == []


def _run_alone(notebook: Path, folder: Path, cache: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    saved = {k: os.environ.get(k) for k in ("NBPACK_CACHE", "NBPACK_NO_UPLOAD")}
    os.environ.update(NBPACK_CACHE=str(cache), NBPACK_NO_UPLOAD="1")
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return nb


def test_runtime_files_are_checked_one_by_one_and_the_cache_is_rechecked(tmp_path: Path) -> None:
    # The manifest's runtime listing matches the pin, but a file the server hands out does not match its listing.
    bundle_zip = _build(tmp_path, "Lone files")
    site = tmp_path / "site"
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(site)
        manifest = json.loads(zf.read("nbpack.json"))
        stored = zf.read(NOTEBOOK)
        original = zf.read("nbpack_runtime/base.py")
    (site / "nbpack_runtime" / "base.py").write_bytes(original + b"\nraise SystemExit('tampered')\n")
    folder, cache = tmp_path / "work", tmp_path / "cache"
    folder.mkdir()
    with file_server(site) as url:
        (folder / NOTEBOOK).write_bytes(lone.served_notebook(stored, manifest, url + "/"))
        with pytest.raises(
            CellExecutionError, match="base.py from the nbpack service does not match the pinned runtime"
        ):
            _run_alone(folder / NOTEBOOK, folder, cache)
    pin = runtime_pin((c["path"], c["sha256"]) for c in manifest["contents"])
    assert not (cache / "runtime" / pin / "nbpack_runtime" / "base.py").exists()

    # A damaged copy in the cache is fetched again, not imported.
    (site / "nbpack_runtime" / "base.py").write_bytes(original)
    cached = cache / "runtime" / pin / "nbpack_runtime" / "base.py"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(original + b"\nraise SystemExit('tampered cache')\n")
    with file_server(site) as url:
        (folder / NOTEBOOK).write_bytes(lone.served_notebook(stored, manifest, url + "/"))
        ran = _run_alone(folder / NOTEBOOK, folder, cache)
    assert cached.read_bytes() == original
    assert any(o.get("name") == "stdout" and "return bundle r-" in o["text"] for o in ran.cells[-1].outputs)


def test_a_renamed_lone_notebook_keeps_its_return(service, tmp_path: Path) -> None:
    """A browser saves a second download as ``lone (1).ipynb``: the results cell finds it by the bundle id in its
    metadata, and the return (notebook, outputs, values) is stored (issue 20: it was refused, 400)."""
    client = Client(service.url, API_KEY, timeout=60)
    bundle_zip = _build(tmp_path, "Lone renamed")
    created = client.push(bundle_zip)
    folder = tmp_path / "work"
    first = _fetch_alone(created["links"]["notebook"], folder)
    renamed = first.rename(folder / "lone (1).ipynb")
    assert json.loads(renamed.read_text())["metadata"]["nbpack"]["bundle_id"] == created["content_id"]
    _jupyter(tmp_path, folder, ["nbconvert", "--to", "notebook", "--execute", "--inplace", renamed.name])
    (listed,) = client.returns(created["id"])
    assert listed["status"] == "completed" and "warnings" not in listed
    manifest = client.get_return(created["id"], listed["id"])
    assert manifest["provenance"]["notebook_file"]["file"] == "lone (1).ipynb"
    assert manifest["notebook"] == NOTEBOOK and NOTEBOOK in {e["path"] for e in manifest["contents"]}
    assert {"outputs/sources.arrow", "outputs/big.arrow"} <= {o["path"] for o in manifest["outputs"]}


def test_a_return_without_any_notebook_is_stored_with_a_warning(service, tmp_path: Path) -> None:
    """Run from stdin (no notebook file anywhere): the return lacks the notebook and is stored all the same, marked."""
    client = Client(service.url, API_KEY, timeout=60)
    bundle_zip = _build(tmp_path, "Lone no file")
    created = client.push(bundle_zip)
    folder = tmp_path / "work"
    notebook = _fetch_alone(created["links"]["notebook"], tmp_path / "elsewhere")
    folder.mkdir()
    run = _jupyter(tmp_path, folder, ["nbconvert", "--to", "notebook", "--execute", "--stdin", "--stdout"], notebook)
    assert "nbpack: warning: the notebook file was not found" in run.stdout
    (listed,) = client.returns(created["id"])
    assert listed["notebook_missing"] is True and len(listed["warnings"]) == 1
    manifest = client.get_return(created["id"], listed["id"])
    assert NOTEBOOK not in {e["path"] for e in manifest["contents"]}
    assert {"outputs/sources.arrow", "outputs/big.arrow"} <= {o["path"] for o in manifest["outputs"]}
    assert {v["name"] for v in manifest["values"]} >= {"prefix", "runtime_file"}
    # What the return has is served; the notebook it lacks is a 404, not a 500.
    req = urllib.request.Request(
        f"{service.url}/api/v1/bundles/{created['id']}/returns/{listed['id']}/notebook.html",
        headers={"X-API-Key": API_KEY},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 404
