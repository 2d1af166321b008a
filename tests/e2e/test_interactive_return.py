"""Interactive use: a notebook run in a kernel but not saved (JupyterLab's Run All does not save). The results cell
says so before sending, the return manifest records it, and saving then re-running the cell sends the current one.
A real kernel through nbclient, executing cells without writing the notebook, as a browser front end does."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.bundle.notebook import notebook_bytes
from nbpack.bundle.schema import iter_errors
from nbpack.cli import main
from tests.fixtures.hub import free_port
from tests.helpers import template_notebook

WORK = 'print("worked", 6 * 7)\nnbpack_runtime.save_value("answer", 6 * 7)'


def _unpacked(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle.zip"
    build_bundle(BuildSpec(title="Interactive", notebook=template_notebook(WORK), notebook_name="nb.ipynb"), bundle)
    folder = tmp_path / "unpacked"
    main(["open", str(bundle), "--dir", str(folder), "--no-lab"])
    return folder


def _returns(folder: Path) -> list[tuple[dict, dict]]:
    found = []
    for path in sorted(folder.glob("nbpack-return-*.zip"), key=lambda p: p.stat().st_mtime_ns):
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("nbpack-return.json"))
            found.append((manifest, json.loads(zf.read(manifest["notebook"]))))
        path.unlink()
    return found


def _said(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def test_unsaved_run_is_flagged_then_save_and_rerun_sends_the_current_notebook(tmp_path: Path) -> None:
    folder = _unpacked(tmp_path)
    nb_path = folder / "nb.ipynb"
    nb = nbformat.reads(nb_path.read_text(), as_version=4)
    results = len(nb.cells) - 1
    env = {
        k: v for k, v in os.environ.items() if k not in ("NBPACK_NOTEBOOK", "NBPACK_RETURN_PATH", "JPY_SESSION_NAME")
    }
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel(env=env):
        # "Run All" without saving: the file on disk is still the bundle's notebook, without outputs.
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        said = _said(nb.cells[results])
        assert (
            "nb.ipynb on disk is older than what this kernel ran (saved with no outputs; the kernel ran In [2])" in said
            and "save the notebook (Ctrl+S, or File > Save Notebook) and run this cell again" in said
        )
        [(manifest, sent)] = _returns(folder)
        assert iter_errors(manifest, "return") == []
        assert manifest["provenance"]["notebook_file"] == {
            "source": "bundle",
            "stale": True,
            "saved_last_execution": None,
            "kernel_last_execution": 2,
        }
        assert not any(c.get("outputs") for c in sent["cells"])

        # Save (what the front end holds), then run the results cell again: the current notebook goes.
        nb_path.write_bytes(notebook_bytes(nb))
        client.execute_cell(nb.cells[results], results)
        assert "older than" not in _said(nb.cells[results])
        [(manifest, sent)] = _returns(folder)
        assert manifest["provenance"]["notebook_file"] == {
            "source": "bundle",
            "stale": False,
            "saved_last_execution": 3,
            "kernel_last_execution": 3,
        }
        work = next(c for c in sent["cells"] if "worked" in "".join(c["source"]))
        assert "".join(work["outputs"][0]["text"]) == "worked 42\n"
        assert {v["name"]: v["data"] for v in manifest["values"]} == {"answer": 42}

        # Saved after an edit that was not run again: what ran is not what is saved, so it is stale again.
        nb.cells[results - 1].source = "print('edited, not run')"
        nb_path.write_bytes(notebook_bytes(nb))
        client.execute_cell(nb.cells[0], 0)  # something else ran since: In [5]
        client.execute_cell(nb.cells[results], results)
        [(manifest, _)] = _returns(folder)
        assert manifest["provenance"]["notebook_file"]["stale"] is True
        assert manifest["provenance"]["notebook_file"]["kernel_last_execution"] == 5


@contextlib.contextmanager
def _jupyter_server(app: str, root: Path, scratch: Path) -> Iterator[str]:
    """A real JupyterLab or Notebook 7 (`app`) on 127.0.0.1 serving `root`; yields its base URL (token ``tok``)."""
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(scratch),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }
    for name in ("NBPACK_NOTEBOOK", "NBPACK_RETURN_PATH", "NBPACK_SAVE_WAIT"):
        env.pop(name, None)
    with open(scratch / "lab.log", "wb") as log:
        lab = subprocess.Popen(
            [
                str(Path(sys.executable).parent / app),
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--IdentityProvider.token=tok",
                f"--ServerApp.root_dir={root}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/api/status?token=tok", timeout=2):
                    break
            except OSError:
                assert lab.poll() is None, (scratch / "lab.log").read_text()[-2000:]
                time.sleep(0.5)
        yield url
    finally:
        lab.terminate()
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(10)


def _wait_kernel_idle(url: str) -> None:
    for _ in range(360):
        with urllib.request.urlopen(f"{url}/api/kernels?token=tok", timeout=10) as resp:
            kernels = json.load(resp)
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel at {url}: {kernels}")


@pytest.mark.browser
@pytest.mark.parametrize(("app", "path"), [("jupyter-lab", "lab/tree"), ("jupyter-notebook", "notebooks")])
def test_run_all_in_jupyter_without_saving_sends_the_executed_notebook(
    tmp_path: Path, page, app: str, path: str
) -> None:
    """Run All in JupyterLab 4 or Notebook 7, no save: the results cell has the front end save the notebook, so
    the return holds its outputs."""
    folder = _unpacked(tmp_path)
    scratch = tmp_path / "lab"
    scratch.mkdir()
    with _jupyter_server(app, folder, scratch) as url:
        page.goto(f"{url}/{path}/nb.ipynb?token=tok", timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=180_000)
        _wait_kernel_idle(url)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        page.locator(".jp-OutputArea-output", has_text="return bundle r-").wait_for(timeout=180_000)
        shown = page.locator(".jp-NotebookPanel").inner_text()
    assert "older than what this kernel ran" not in shown and "asked Jupyter to save this notebook" in shown
    [(manifest, sent)] = _returns(folder)
    assert manifest["provenance"]["notebook_file"] == {
        "source": "jupyter",
        "stale": False,
        "saved_by_kernel": True,
        "saved_last_execution": 2,
        "kernel_last_execution": 2,
    }
    work = next(c for c in sent["cells"] if "worked" in "".join(c["source"]))
    assert "".join(work["outputs"][0]["text"]) == "worked 42\n"
