"""The command line against a real service: ``nbpack demo``, then ``push``, ``pull`` and ``link`` of its bundle to a
gunicorn-served nbpack (tests/fixtures/service.py), run as a user runs them (the installed ``nbpack`` script)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from tests.fixtures.service import service_env
from tests.helpers import REPO

NBPACK = REPO / ".venv" / "bin" / "nbpack"
KEY = "cli-remote-key-0123"
HUB = "Test Hub/East"  # a slash and a space, as ESAP facility names have
HUBS = f"""
[[hubs]]
name = "{HUB}"
url = "https://hub.invalid/"
launch = "nbgitpuller"
"""


def _nbpack(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPACK_")}
    return subprocess.run([str(NBPACK), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _failed_with_one_line(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbpack: error: ") and words in lines[0], done.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``nbpack demo`` run once: the folder with the bundle it built and the return it wrote."""
    folder = tmp_path_factory.mktemp("demo")
    done = _nbpack("demo", "--dir", "out", cwd=folder, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "out"


def test_demo_builds_a_valid_bundle_and_runs_it(demo: Path) -> None:
    bundle, ret = demo / "demo-bundle.zip", demo / "demo-return.zip"
    for path, kind in ((bundle, "bundle"), (ret, "return")):
        check = _nbpack("validate", str(path), cwd=demo)
        assert check.returncode == 0 and f"valid {kind}" in check.stdout, check.stdout + check.stderr
    shown = json.loads(_nbpack("inspect", str(ret), "--json", cwd=demo).stdout)
    assert shown["status"] == "completed"
    assert shown["bundle_id"] == json.loads(_nbpack("inspect", str(bundle), "--json", cwd=demo).stdout)["id"]


def test_push_pull_link_against_a_running_service(demo: Path, tmp_path: Path, start_service) -> None:  # noqa: ANN001
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(HUBS)
    svc = start_service(service_env(str(tmp_path / "store"), KEY, hubs_file=str(hubs)))
    bundle = demo / "demo-bundle.zip"
    bid = json.loads(_nbpack("inspect", str(bundle), "--json", cwd=tmp_path).stdout)["id"]

    pushed = _nbpack("push", str(bundle), "--json", "--server", svc.url, "--api-key", KEY, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    doc = json.loads(pushed.stdout)
    sid = doc["id"]  # the stored id: the bundle id, or (with per-create handles) the handle's
    assert doc["created"] is True and doc["links"]["landing"].startswith(f"{svc.url}/b/{sid}?t=")
    again = _nbpack("push", str(bundle), "--json", "--server", svc.url, "--api-key", KEY, cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["links"]["landing"].startswith(svc.url), again.stderr
    # Without --json: the landing link first, then the id (a person reads it; --json is for programs).
    plain = _nbpack("push", str(bundle), "--server", svc.url, "--api-key", KEY, cwd=tmp_path)
    first, second = plain.stdout.splitlines()
    assert first.startswith(f"{svc.url}/b/h-") and "?t=" in first and second.startswith("stored as h-"), plain.stdout
    listed = _nbpack("returns", sid, "--server", svc.url, "--api-key", KEY, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout == f"{sid}: no returns yet (the notebook's last cell sends one)\n"
    content = json.loads(_nbpack("inspect", str(bundle), "--json", cwd=tmp_path).stdout)["id"]
    _failed_with_one_line(
        _nbpack("link", content, "--hub", HUB, "--server", svc.url, "--api-key", KEY, cwd=tmp_path), "content id"
    )

    pulled = _nbpack("pull", doc["links"]["landing"], "-o", "got.zip", cwd=tmp_path)
    assert pulled.returncode == 0 and "downloaded" in pulled.stdout, pulled.stderr
    check = _nbpack("validate", "got.zip", cwd=tmp_path)
    assert check.returncode == 0 and f"valid bundle {bid}" in check.stdout, check.stdout + check.stderr
    stored = json.loads(_nbpack("inspect", "got.zip", "--json", cwd=tmp_path).stdout)
    assert stored["returns"]["endpoint"] == f"{svc.url}/api/v1/bundles/{sid}/returns"

    for target in (str(tmp_path / "got.zip"), sid):  # the zip as the service stored it, or the id push printed
        linked = _nbpack("link", target, "--hub", HUB, "--server", svc.url, "--api-key", KEY, cwd=tmp_path)
        assert linked.returncode == 0, linked.stderr
        url = urllib.parse.urlsplit(linked.stdout.strip())
        assert (url.scheme, url.netloc, url.path) == ("https", "hub.invalid", "/hub/user-redirect/git-pull")
        repo = urllib.parse.parse_qs(url.query)["repo"][0]
        assert repo.startswith(f"{svc.url}/git/") and repo.endswith(f"/{sid}.git")
    # The repository the link names is really there for git (nbgitpuller's clone is this request).
    refs = subprocess.run(
        ["git", "ls-remote", repo],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert refs.returncode == 0 and "refs/heads/main" in refs.stdout, refs.stderr


def test_remote_commands_fail_with_one_line(demo: Path, tmp_path: Path, start_service) -> None:  # noqa: ANN001
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(HUBS)
    svc = start_service(service_env(str(tmp_path / "store"), KEY, hubs_file=str(hubs)))
    bundle = str(demo / "demo-bundle.zip")
    _failed_with_one_line(_nbpack("push", bundle, "--server", svc.url, "--api-key", "wrong", cwd=tmp_path), "API key")
    doc = json.loads(_nbpack("push", bundle, "--json", "--server", svc.url, "--api-key", KEY, cwd=tmp_path).stdout)
    landing = doc["links"]["landing"]
    forged = landing[:-4] + ("AAAA" if not landing.endswith("AAAA") else "BBBB")
    _failed_with_one_line(_nbpack("pull", forged, "-o", "x.zip", cwd=tmp_path), "403")
    assert not (tmp_path / "x.zip").exists()
    _failed_with_one_line(
        _nbpack("link", doc["id"], "--hub", "Nowhere", "--server", svc.url, "--api-key", KEY, cwd=tmp_path),
        "no hub named 'Nowhere'",
    )
