"""The first hour, as a newcomer takes it, on one computer.

A copy of the repository's files; the README's first command (``./scripts/setup.sh && .venv/bin/nbpack demo &&
.venv/bin/nbpack serve``) makes its own venv and runs there, without activating it. Then, in Debian's Chromium: the
demo's landing page → "Open in JupyterLab on this computer" → the notebook in Lab (pulled by nbgitpuller from the
service, as a hub's link does) → Run All → the return listed on the landing page and by ``nbpack returns``; the
page fits a 390 px screen. In the same venv (which has no pandas) a bundle built with the default notebook runs,
and ``nbpack open`` finds JupyterLab beside nbpack and prints the notebook's URL, not the Launcher's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.hub import free_port
from tests.helpers import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Awkward on purpose: an int64 beyond 2^53, NaN beside an empty cell, unicode with commas (quoted).
STARS = 'id,name,mag\n9007199254740993,"Alcyone, η Tau",2.87\n2,Astérope,NaN\n3,Électre,\n'


def _env(home: Path) -> dict[str, str]:
    """A newcomer's shell: no venv activated, no NBPACK_ settings, Jupyter's state in a fresh home."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "NBPACK_", "JUPYTER"))}
    home.mkdir(parents=True, exist_ok=True)
    return {**keep, "HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository's tracked files as they are now, set up by scripts/setup.sh alone."""
    root = tmp_path_factory.mktemp("newcomer") / "nbpack"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        src = REPO / name
        if src.is_file() and not src.is_symlink():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    # pip's own cache stays the user's (a newcomer's machine has one too); everything else is fresh.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "NBPACK_"))}
    setup = _run(["./scripts/setup.sh"], root, env, timeout=1800)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "Deprecat" not in setup.stdout + setup.stderr, setup.stdout + setup.stderr
    yield root


def test_setup_builds_nbpack_without_setuptools_deprecation_warnings(clone: Path, tmp_path: Path) -> None:
    # -v shows what the build backend prints, which -q (setup.sh) hides: the project metadata must draw no warning.
    built = _run(
        [clone / ".venv/bin/python", "-m", "pip", "wheel", "-v", "--no-deps", "-w", tmp_path, "."],
        clone,
        {
            **os.environ,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "setuptools" in built.stdout + built.stderr  # the backend's output is there to be read
    assert "Deprecat" not in built.stdout + built.stderr, [
        line for line in (built.stdout + built.stderr).splitlines() if "eprecat" in line
    ]


def _wait_for_service(log: Path, url: str, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
                if resp.status == 200:
                    return log.read_text()
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("nbpack serve did not answer /healthz within 300 s:\n" + log.read_text()[-3000:])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _lab_token(here: str) -> str:
    """The local Lab's token, from the redirect the landing page's button follows (loopback: this test). While Lab
    is still starting the button answers 503 and a page that tries again."""
    for _ in range(300):
        try:
            urllib.request.build_opener(_NoRedirect).open(here, timeout=30)
        except urllib.error.HTTPError as err:
            if err.code == 503:
                assert err.headers["Retry-After"] == "2"
                time.sleep(1)
                continue
            assert err.code == 302, err.code
            return re.search(r"[?&]token=([^&]+)", err.headers["Location"]).group(1)
        raise AssertionError("the local launch link did not redirect")
    raise AssertionError("JupyterLab on this computer did not start within 300 s")


def _wait_kernel_idle(lab: str, token: str) -> None:
    for _ in range(600):
        with urllib.request.urlopen(f"{lab}/api/kernels?token={token}", timeout=10) as resp:
            kernels = json.load(resp)
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel at {lab}: {kernels}")


def test_readme_first_command_then_the_round_trip_in_a_browser(clone: Path, tmp_path: Path, browser) -> None:  # noqa: ANN001
    env = _env(tmp_path / "home")
    nbpack = clone / ".venv" / "bin" / "nbpack"
    demo = _run([nbpack, "demo"], clone, env)
    assert demo.returncode == 0 and "(status completed)" in demo.stdout, demo.stdout + demo.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            [str(nbpack), "serve", "--port", str(port)],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    context = None
    try:
        said = _wait_for_service(log, url, serve)
        found = re.search(r"demo bundle (h-[0-9a-f]{24}): (http://\S+)", said)
        lab = re.search(r"JupyterLab on this computer: (http://127\.0\.0\.1:\d+)/lab", said)
        assert found and lab, said
        hid, landing = found.groups()

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(landing)
        assert page.locator("#bundle-id").inner_text() == hid
        assert page.locator("#no-returns").is_visible()
        # The git URL's copy button puts the whole URL on the clipboard (the one script the page's CSP allows).
        page.locator('button.copy[data-copy="git-url"]').click()
        page.locator('button.copy[data-copy="git-url"]', has_text="Copied").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == page.locator("#git-url").inner_text()
        here = page.locator("#open-here")
        assert here.inner_text() == "Open in JupyterLab on this computer"
        token = _lab_token(here.get_attribute("href"))
        here.click()
        page.wait_for_url(re.compile(r".*/lab/tree/[^?]*/gaia-cone\.ipynb"), timeout=300_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=300_000)
        _wait_kernel_idle(lab.group(1), token)
        # The bootstrap cell's source is folded in Lab (its source_hidden metadata): a placeholder shows instead.
        assert page.locator(".jp-NotebookPanel .jp-InputPlaceholder").count() >= 1
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        sent = page.locator(".jp-OutputArea-output", has_text="uploaded as r-")
        sent.wait_for(timeout=300_000)
        rid = re.search(r"uploaded as (r-[0-9a-f]{24})", sent.inner_text()).group(1)

        page.goto(landing)
        row = page.locator(f'#returns tr.return[data-return="{rid}"]')
        assert "completed" in row.inner_text()
        listed = _run([nbpack, "returns", hid, "--server", url], clone, env, timeout=120)
        assert listed.returncode == 0 and listed.stdout.startswith(f"{rid}  completed"), listed.stdout + listed.stderr

        # A phone's width: nothing scrolls sideways (tables and long links scroll inside their own boxes).
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(landing)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        if context is not None:
            context.close()
        os.killpg(serve.pid, signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(30)
    # JupyterLab went with the service (it is in the service's process group, and dies with its parent).
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{lab.group(1)}/api/status", timeout=2)
        except OSError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("JupyterLab still answers after nbpack serve stopped")


def test_default_notebook_runs_without_pandas_and_open_shows_the_notebook(clone: Path, tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    venv = clone / ".venv" / "bin"
    assert _run([venv / "python", "-c", "import pandas"], tmp_path, env).returncode != 0  # as a newcomer's venv
    (tmp_path / "stars.csv").write_text(STARS, "utf-8")
    built = _run([venv / "nbpack", "build", "-o", "mine.zip", "--catalog", "stars=stars.csv"], tmp_path, env)
    assert built.returncode == 0, built.stdout + built.stderr
    ran = _run([venv / "nbpack", "run", "mine.zip", "-o", "result.zip"], tmp_path, env)
    assert ran.returncode == 0 and "(status completed)" in ran.stdout, ran.stdout + ran.stderr
    shown = _run([venv / "nbpack", "inspect", "result.zip", "--json"], tmp_path, env)
    values = {v["name"]: v["data"] for v in json.loads(shown.stdout)["values"]}
    assert values == {"catalog_rows": {"stars": 3}}

    with open(tmp_path / "open.log", "wb") as out:
        opened = subprocess.Popen(
            [str(venv / "nbpack"), "open", "mine.zip", "--dir", "mine"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not (shown_url := re.search(r"http://127\.0\.0\.1:\d+/\S+", (tmp_path / "open.log").read_text())):
            assert opened.poll() is None and time.monotonic() < deadline, (tmp_path / "open.log").read_text()
            time.sleep(0.5)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/lab/tree/nbpack-bundle\.ipynb\?token=\w+", shown_url.group(0)), (
            shown_url
        )
    finally:
        if opened.poll() is None:
            os.killpg(opened.pid, signal.SIGTERM)
            try:
                opened.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(opened.pid, signal.SIGKILL)
                opened.wait(30)
