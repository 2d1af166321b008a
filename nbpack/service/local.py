"""Local mode's "Open in JupyterLab on this computer": the launch link into the Jupyter server beside the service."""

from __future__ import annotations

from typing import Any

from nbpack.config import Config
from nbpack.errors import NotFound
from nbpack.hub import links
from nbpack.local.jupyter import LocalJupyter, answers, parse_server_url
from nbpack.service.handle import Handle

__all__ = ["local_launch_url", "local_server", "lab_ready"]


def local_server(config: Config) -> LocalJupyter | None:
    """The Jupyter server on this computer the service opens bundles in (local mode only), else None."""
    setting = config.local_jupyter if config.local_mode else None
    return parse_server_url(setting) if setting else None


def local_launch_url(config: Config, handle: Handle, manifest: dict[str, Any], git_url: str) -> str:
    """Where "Open in JupyterLab on this computer" sends the browser: the local server's nbgitpuller link (with its
    token, so the browser is logged in) for this handle's repository (``git_url``), opening its notebook."""
    server = local_server(config)
    if server is None:
        raise NotFound(
            "this service runs no JupyterLab on this computer (only `nbpack serve` does)", code="no_local_lab"
        )
    url = links.server_launch_url(
        server.url,
        git_url,
        notebook=manifest["payload"]["notebook"],
        target_dir=links.target_dir_for(handle.id, manifest["title"]),
    )
    return f"{url}&token={server.token}"


def lab_ready(config: Config) -> bool:
    """Whether the Jupyter server on this computer answers yet (it starts beside ``nbpack serve``, in seconds)."""
    server = local_server(config)
    return server is not None and answers(server, timeout=2.0)
