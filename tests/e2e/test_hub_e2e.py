"""End to end on real parts: service on SeaweedFS → landing page → stock JupyterHub + nbgitpuller → kernel → return.

One test walks the whole issue: the landing page ranks the hubs, its button opens the bundle in a real hub
(login, nbgitpuller clone from the service's git endpoint, Lab shows the notebook), the notebook's cells run
in the user's kernel (catalog loaded, a file fetched from a local HTTP server and checked against its
sha256, a wrong checksum refused), the return arrives at the service, a user edit survives a second click,
and plain `git` clones the endpoint shallow and full and fetches.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from nbpack.client import Client
from nbpack.hub.links import target_dir_for
from tests.fixtures.hub import NotebookRunError
from tests.fixtures.service import service_env
from tests.helpers import file_server as serve_folder
from tests.helpers import kernel_notebook, wait_for_returns

pytestmark = pytest.mark.hub

API_KEY = "e2e-api-key-0123456789"
USER = "astro"
HUB = "test-hub"
LEAN_HUB = "lean-hub"
SITE = "TEST-RSE"
NOTEBOOK = "analysis.ipynb"
SPECTRUM = bytes(range(256)) * 300  # 76.8 kB, not text, so a corrupt or partial fetch shows
POLL_SECONDS = 60
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "GIT_TERMINAL_PROMPT": "0"}


@pytest.fixture
def file_server(tmp_path) -> Iterator[str]:
    """A plain `http.server` on 127.0.0.1 serving the spectrum file: the data lake's stand-in."""
    root = tmp_path / "lake"
    root.mkdir()
    (root / "spectrum.bin").write_bytes(SPECTRUM)
    with serve_folder(root) as url:
        yield url


def _registry(path: Path, hub_url: str) -> Path:
    """A hub registry: the real test hub (holds the data, has pyarrow) and a lean hub without pyarrow."""
    path.write_text(f"""
[[hubs]]
name = "{LEAN_HUB}"
description = "A hub without pyarrow and without local data."
url = "http://127.0.0.1:9/"
launch = "nbgitpuller"
sites = ["ELSEWHERE"]
packages = ["numpy==1.26.4"]

[[hubs]]
name = "{HUB}"
description = "The JupyterHub of this test run."
url = "{hub_url}/"
facilitytype = "JupyterHub"
launch = "nbgitpuller"
sites = ["{SITE}"]
packages = ["pyarrow", "numpy"]
""")
    return path


def _notebook() -> dict:
    notebook = kernel_notebook(
        "# Stars and a spectrum",
        'rows = catalogs["stars"].num_rows\nprint("catalog rows", rows)',
        'path = bundle.file("spectrum")\ndata = path.read_bytes()\nprint("spectrum bytes", len(data), "at", path)',
        'nbpack_runtime.save_value("summary", {"rows": rows, "spectrum_bytes": len(data)})\n'
        'nbpack_runtime.save_output(f"{rows} {len(data)}\\n".encode(), "summary.txt")\n'
        'print("saved")',
    )
    return json.loads(nbformat.writes(notebook))


def _request(lake_url: str, sha256: str, title: str) -> dict:
    return {
        "title": title,
        "catalogs": [
            {
                "name": "stars",
                "rows": [{"ra": 10.5 + i, "dec": -3.0 + i, "mag": 12.0 + i / 10} for i in range(7)],
                "columns": {"ra": {"unit": "deg"}, "dec": {"unit": "deg"}},
            }
        ],
        "files": [
            {
                "name": "spectrum",
                "uri": f"{lake_url}/spectrum.bin",
                "size": len(SPECTRUM),
                "checksums": {"sha256": sha256},
                "site": SITE,
            }
        ],
        "notebook": _notebook(),
        "notebook_name": NOTEBOOK,
        "requirements": ["pyarrow"],
        "options": {"allow_http": True},
    }


def _text(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")


def _git(*args: str, cwd: Path) -> float:
    began = time.monotonic()
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, timeout=120)
    return time.monotonic() - began


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def _click_launch(page, landing: str) -> None:
    page.goto(landing)
    page.locator(f'.hub[data-hub="{HUB}"] .hub-launch').click()


def test_bundle_opens_runs_and_returns_through_a_stock_hub(
    jupyterhub, page, s3_bucket, seaweedfs, start_service, file_server, tmp_path
):
    env = service_env(
        f"s3://{s3_bucket}/e2e",
        API_KEY,
        s3_endpoint=seaweedfs.endpoint,
        hubs_file=str(_registry(tmp_path / "hubs.toml", jupyterhub.url)),
        cache_dir=str(tmp_path / "service-cache"),
    )
    service = start_service(env)
    client = Client(service.url, API_KEY, timeout=60)
    created = client.create(_request(file_server, hashlib.sha256(SPECTRUM).hexdigest(), "Stars and a spectrum"))
    bid, links = created["id"], created["links"]
    assert set(links["launch"]) == {HUB, LEAN_HUB}
    timings: dict[str, float] = {"hub_start": jupyterhub.timings["hub_start"]}

    # The ranking puts the hub holding the data first, the one lacking pyarrow last, each with its reason.
    ranking = client.hubs(bid)
    assert [r["hub"]["name"] for r in ranking] == [HUB, LEAN_HUB]
    assert any(f"holds 100% of the referenced bytes at {SITE}" in reason for reason in ranking[0]["reasons"])
    assert any("lacks pyarrow" in reason for reason in ranking[1]["reasons"])

    page.goto(links["landing"])
    hubs_shown = page.locator("#hubs .hub")
    assert hubs_shown.count() == 2
    assert hubs_shown.nth(0).get_attribute("data-hub") == HUB
    assert f"holds 100% of the referenced bytes at {SITE}" in hubs_shown.nth(0).inner_text()
    assert "lacks pyarrow" in hubs_shown.nth(1).inner_text()

    # First click: the hub asks for a login, spawns the server, nbgitpuller clones, Lab opens the notebook.
    folder = target_dir_for(bid, "Stars and a spectrum")
    began = time.monotonic()
    page.locator(f'.hub[data-hub="{HUB}"] .hub-launch').click()
    page.wait_for_url(lambda url: "/hub/login" in url or "/lab" in url, timeout=60_000)
    jupyterhub.login(page, USER)
    jupyterhub.wait_for_lab_notebook(page, NOTEBOOK, cells=6)
    timings["first_click_to_notebook_shown"] = time.monotonic() - began
    timings["login"] = jupyterhub.timings["login"]
    home = jupyterhub.user_home(USER)
    cloned = home / folder / NOTEBOOK
    assert cloned.is_file() and (home / folder / "nbpack_runtime" / "__init__.py").is_file()

    # Run it in the user's kernel: catalog loaded, file fetched and verified, return sent back.
    began = time.monotonic()
    outputs = jupyterhub.run_notebook_in_user_kernel(USER, f"{folder}/{NOTEBOOK}")
    timings["kernel_run"] = time.monotonic() - began
    assert "catalog rows 7" in _text(outputs[1])
    fetched = _text(outputs[2])
    assert f"spectrum bytes {len(SPECTRUM)}" in fetched
    assert "saved" in _text(outputs[3])
    assert "uploaded as r-" in _text(outputs[4]), _text(outputs[4])
    cached = home / ".cache" / "nbpack" / "sha256" / hashlib.sha256(SPECTRUM).hexdigest() / "spectrum.bin"
    assert cached.read_bytes() == SPECTRUM
    assert not list(cached.parent.glob("*.part"))

    returns = wait_for_returns(client, bid, POLL_SECONDS)
    assert len(returns) == 1, returns
    assert returns[0]["status"] == "completed" and returns[0]["values"] == ["summary"]
    manifest = client.get_return(bid, returns[0]["id"])
    assert manifest["values"][0]["data"] == {"rows": 7, "spectrum_bytes": len(SPECTRUM)}
    summary = client.return_file(bid, returns[0]["id"], "outputs/summary.txt", tmp_path / "summary.txt")
    assert summary.read_text() == f"7 {len(SPECTRUM)}\n"

    # Edit the notebook as the user would (Lab left first so nothing in the page writes it meanwhile) ...
    page.goto("about:blank")
    edited = nbformat.read(cloned, as_version=4)
    edited.cells.append(nbformat.v4.new_markdown_cell("astro was here"))
    nbformat.write(edited, cloned)
    # ... then click the same button again: nbgitpuller merges, the edit wins, Lab shows it.
    began = time.monotonic()
    _click_launch(page, links["landing"])
    panel = jupyterhub.wait_for_lab_notebook(page, NOTEBOOK, cells=7)
    panel.locator(".jp-MarkdownOutput", has_text="astro was here").wait_for(state="visible", timeout=60_000)
    timings["second_click_to_notebook_shown"] = time.monotonic() - began
    assert "astro was here" in cloned.read_text()
    page.goto("about:blank")

    # A bundle whose file has a wrong checksum: the runtime refuses the download and caches nothing.
    wrong = "0" * 64
    bad = client.create(_request(file_server, wrong, "Wrong checksum"))
    bad_folder = target_dir_for(bad["id"], "Wrong checksum")
    jupyterhub.git_pull(USER, bad["links"]["git"], targetpath=bad_folder)
    with pytest.raises(NotebookRunError, match="ChecksumMismatch"):
        jupyterhub.run_notebook_in_user_kernel(USER, f"{bad_folder}/{NOTEBOOK}")
    assert not [p for p in (home / ".cache" / "nbpack" / "sha256" / wrong).rglob("*") if p.is_file()]

    # Plain git against the endpoint: shallow and full clones, then a fetch in the shallow one.
    bundle_zip = client.download(bid, tmp_path / "bundle.zip")
    with zipfile.ZipFile(io.BytesIO(bundle_zip.read_bytes())) as zf:
        expected = {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}
    timings["git_clone_shallow"] = _git("clone", "-q", "--depth", "1", links["git"], "shallow", cwd=tmp_path)
    timings["git_clone_full"] = _git("clone", "-q", links["git"], "full", cwd=tmp_path)
    timings["git_fetch"] = _git("fetch", "-q", "origin", cwd=tmp_path / "shallow")
    assert _tree(tmp_path / "shallow") == expected
    assert _tree(tmp_path / "full") == expected
    print("timings (s):", {key: round(value, 2) for key, value in timings.items()})
