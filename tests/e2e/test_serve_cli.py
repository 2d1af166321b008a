"""`nbpack serve` as a new user starts it: an empty folder, no NBPACK_* variables, a terminal; the demo bundle's
landing link it prints opens, its zip downloads and validates, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from nbpack.client import pull
from tests.fixtures.hub import free_port
from tests.helpers import REPO

NBPACK = REPO / ".venv" / "bin" / "nbpack"
LINK = re.compile(r"demo bundle (h-[0-9a-f]{24}): (http://\S+)")


def _read_until(fd: int, pattern: re.Pattern[str], proc: subprocess.Popen, timeout: float) -> tuple[re.Match, str]:
    """Read the terminal until ``pattern`` shows up (bounded in time); the match and all text so far."""
    text = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                text += os.read(fd, 65536).decode(errors="replace")
            except OSError:  # the terminal closed: the process ended
                break
            if m := pattern.search(text):
                return m, text
        elif proc.poll() is not None:
            break
    raise AssertionError(f"no match for {pattern.pattern!r} within {timeout}s; output:\n{text[-3000:]}")


def test_serve_on_a_fresh_folder_serves_the_demo(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    # A terminal, as a user has: the printed lines arrive as they are written.
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(NBPACK), "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        m, _ = _read_until(master, LINK, proc, timeout=90)
        bid, landing = m.group(1), m.group(2)
        assert landing.startswith(f"http://127.0.0.1:{port}/b/{bid}?t=")
        _read_until(master, re.compile(r"Listening at|Booting worker"), proc, timeout=60)
        with urllib.request.urlopen(landing, timeout=30) as resp:
            assert resp.status == 200
            page = resp.read().decode()
        title = re.search(r'<h1 id="bundle-title">([^<]+)</h1>', page)
        assert title and title.group(1).strip(), "the landing page shows no title"
        assert title.group(1).strip() in page.split("<title>")[1]

        zip_path = pull(landing, tmp_path / "demo.zip")
        check = subprocess.run(
            [str(NBPACK), "validate", str(zip_path)], capture_output=True, text=True, timeout=120, env=env, cwd=work
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "valid bundle" in check.stdout
        # Storage and keys were created in the folder it was started in, nowhere else.
        assert (work / "nbpack-data" / "handles" / bid / "handle.json").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError("nbpack serve did not stop within 30 s of SIGTERM") from None
        finally:
            os.close(master)
    assert code == 0, f"nbpack serve exited with {code} on SIGTERM"
