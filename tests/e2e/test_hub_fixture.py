"""Self-test of the hub and browser fixtures: nbgitpuller link → login → Lab → kernel run → edit survives a re-pull."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import nbformat
import pytest

from tests.fixtures.hub import free_port
from tests.helpers import kernel_notebook

pytestmark = pytest.mark.hub

GIT_ENV = {
    "GIT_AUTHOR_NAME": "nbpack tests",
    "GIT_AUTHOR_EMAIL": "tests@nbpack.invalid",
    "GIT_COMMITTER_NAME": "nbpack tests",
    "GIT_COMMITTER_EMAIL": "tests@nbpack.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, timeout=30)


def _demo_notebook() -> nbformat.NotebookNode:
    return kernel_notebook("# Demo", "import os\nprint(os.getcwd())", "6 * 7")


@pytest.fixture
def git_server(tmp_path):
    """A bare repo `demo` (branch main, one notebook) served by `git daemon` on a free port."""
    work, served = tmp_path / "work", tmp_path / "served"
    work.mkdir()
    served.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    nbformat.write(_demo_notebook(), work / "demo.ipynb")
    _git("add", "demo.ipynb", cwd=work)
    _git("commit", "-q", "-m", "demo notebook", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(served / "demo"), cwd=tmp_path)
    _git("remote", "add", "served", str(served / "demo"), cwd=work)
    port = free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            f"--base-path={served}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(served),
        ],
        env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/demo"
    deadline = time.monotonic() + 15
    while subprocess.run(["git", "ls-remote", url], capture_output=True, timeout=10).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not come up"
        time.sleep(0.2)
    try:
        yield url, work
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_pull_open_run_edit_repull(jupyterhub, page, git_server):
    repo_url, work = git_server
    link = f"{jupyterhub.url}/hub/user-redirect/git-pull?" + urlencode(
        {"repo": repo_url, "branch": "main", "urlpath": "lab/tree/demo/demo.ipynb"}
    )
    timings = {"hub_start": jupyterhub.timings["hub_start"]}

    began = time.monotonic()
    page.goto(link)
    jupyterhub.login(page, "alice")
    timings["login"] = jupyterhub.timings["login"]
    jupyterhub.wait_for_lab_notebook(page, "demo.ipynb", cells=3)
    timings["link_to_notebook_shown"] = time.monotonic() - began
    home = jupyterhub.user_home("alice")
    assert (home / "demo" / "demo.ipynb").exists()
    assert page.locator(".jp-NotebookPanel:visible .jp-Cell").count() == 3

    began = time.monotonic()
    outputs = jupyterhub.run_notebook_in_user_kernel("alice", "demo/demo.ipynb")
    timings["kernel_run"] = time.monotonic() - began
    assert outputs[0][0]["text"].strip() == str(home / "demo")
    assert outputs[1][0]["data"]["text/plain"] == "42"

    # Leave Lab first so nothing in the page writes the notebook while it is edited on disk.
    page.goto("about:blank")
    edited = nbformat.read(home / "demo" / "demo.ipynb", as_version=4)
    edited.cells.append(nbformat.v4.new_markdown_cell("alice was here"))
    nbformat.write(edited, home / "demo" / "demo.ipynb")
    # Meanwhile upstream moves on: the re-pull must merge it in without losing alice's edit.
    (work / "NEWS.md").write_text("upstream change\n")
    _git("add", "NEWS.md", cwd=work)
    _git("commit", "-q", "-m", "upstream change", cwd=work)
    _git("push", "-q", "served", "main", cwd=work)

    began = time.monotonic()
    page.goto(link)
    panel = jupyterhub.wait_for_lab_notebook(page, "demo.ipynb", cells=4)
    panel.locator(".jp-MarkdownOutput", has_text="alice was here").wait_for(state="visible")
    timings["repull_to_notebook_shown"] = time.monotonic() - began
    assert (home / "demo" / "NEWS.md").read_text() == "upstream change\n"
    assert "alice was here" in (home / "demo" / "demo.ipynb").read_text()

    began = time.monotonic()
    jupyterhub.run_all_in_lab(page)
    jupyterhub.save_in_lab(page)
    timings["lab_run_all_and_save"] = time.monotonic() - began
    saved = nbformat.read(home / "demo" / "demo.ipynb", as_version=4)
    assert [c.source for c in saved.cells][-1] == "alice was here"
    assert saved.cells[2].outputs[0]["data"]["text/plain"] == "42"
    # A second Run All must wait for fresh results, not take the saved [n] prompts for done.
    jupyterhub.run_all_in_lab(page)
    jupyterhub.save_in_lab(page)
    rerun = nbformat.read(home / "demo" / "demo.ipynb", as_version=4)
    assert rerun.cells[2].execution_count > saved.cells[2].execution_count

    (work / "NEWS.md").write_text("second upstream change\n")
    _git("commit", "-q", "-am", "second upstream change", cwd=work)
    _git("push", "-q", "served", "main", cwd=work)
    jupyterhub.git_pull("alice", repo_url)
    assert (home / "demo" / "NEWS.md").read_text() == "second upstream change\n"
    assert "alice was here" in (home / "demo" / "demo.ipynb").read_text()

    session = jupyterhub.login_session("bob")
    assert "bob" in session.get(f"{jupyterhub.url}/hub/home", timeout=30).text
    print("timings (s):", {key: round(value, 1) for key, value in timings.items()})
