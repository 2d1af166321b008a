"""JupyterLab on this computer: find it beside nbpack, start a single-user server for ``nbpack serve``, or attach.

``nbpack serve`` (local mode) runs one Jupyter server next to the service, so the landing page's "Open in JupyterLab
on this computer" button works as a hub's does: the server pulls the handle's git repository with nbgitpuller (the
same ``/git-pull`` link JupyterHub users follow) and opens its notebook. ``NBPACK_LOCAL_JUPYTER`` attaches to a
server already running instead (its URL with ``?token=``; it needs nbgitpuller).

The server listens on 127.0.0.1 only, with a token nbpack draws; the service hands that token out only in local
mode and only to loopback clients (server/pages.py), as the redirect of the local launch button.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from nbpack.errors import InvalidInput

__all__ = [
    "LocalJupyter",
    "answers",
    "find_app",
    "parse_server_url",
    "start_server",
    "wait_until_up",
    "missing_for_launch",
]

# What the local launch needs in nbpack's environment (the [local] extra): the server and its git-pull handler.
LAUNCH_MODULES = ("jupyterlab", "nbgitpuller")


@dataclass(frozen=True)
class LocalJupyter:
    """A single-user Jupyter server on this computer: its base URL (no trailing slash) and token."""

    url: str
    token: str

    def as_setting(self) -> str:
        """The ``NBPACK_LOCAL_JUPYTER`` value naming this server (the service's workers read it)."""
        return f"{self.url}/?token={self.token}"


def find_app(name: str = "jupyter-lab") -> Path | None:
    """``name`` beside the running interpreter (a venv's bin/, used without activating it), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def missing_for_launch() -> list[str]:
    """The packages of the local launch that this environment lacks (empty: ``nbpack serve`` can start Lab)."""
    import importlib.util

    return [m for m in LAUNCH_MODULES if importlib.util.find_spec(m) is None]


def parse_server_url(text: str) -> LocalJupyter:
    """A running server's URL as Jupyter prints it (``http://127.0.0.1:8888/lab?token=abc``) → base URL and token."""
    parts = urlsplit(text.strip())
    token = (parse_qs(parts.query).get("token") or [""])[0]
    if parts.scheme not in ("http", "https") or not parts.netloc or not token:
        raise InvalidInput(f"NBPACK_LOCAL_JUPYTER must be a Jupyter server URL with ?token=, got {text[:80]!r}")
    path = parts.path.rstrip("/")
    for tail in ("/lab", "/tree", "/notebooks"):
        path = path.removesuffix(tail)
    return LocalJupyter(f"{parts.scheme}://{parts.netloc}{path}", token)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # `nbpack serve` becomes gunicorn (exec): when that process ends, however, the Jupyter server ends too.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_server(root: Path, log_path: Path, *, host: str = "127.0.0.1", port: int = 0) -> LocalJupyter:
    """Start JupyterLab serving ``root`` on ``host`` (a free port unless given), not waiting for it to answer.

    Its output goes to ``log_path``. It ends when the process that started it ends (Linux), or with its process group.
    """
    app = find_app("jupyter-lab")
    if app is None:
        raise InvalidInput("JupyterLab is not installed beside nbpack: pip install 'nbpack[local]'")
    port = port or _free_port(host)
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPACK_")}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        subprocess.Popen(
            [
                str(app),
                "--no-browser",
                f"--ServerApp.ip={host}",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={root}",
                *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            ],
            # The token goes by environment, not argv: ps shows every user a process's arguments.
            env={**env, "JUPYTER_TOKEN": token},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    return LocalJupyter(f"http://{host}:{port}", token)


def answers(server: LocalJupyter, timeout: float = 2.0) -> bool:
    """Whether the server answers its status API now (it takes seconds to start after ``nbpack serve``)."""
    try:
        req = urllib.request.Request(f"{server.url}/api/status", headers={"Authorization": f"token {server.token}"})
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except (OSError, urllib.error.URLError):
        return False


def wait_until_up(server: LocalJupyter, timeout: float = 60.0) -> bool:
    """Whether the server answers its status API within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(server):
            return True
        time.sleep(0.3)
    return False
