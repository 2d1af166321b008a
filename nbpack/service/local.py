"""Local mode's "Open in JupyterLab on this computer": the launch link into the Jupyter server beside the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbpack.errors import NotFound
from nbpack.hub import links
from nbpack.local.jupyter import LocalJupyter, parse_server_url

if TYPE_CHECKING:
    from nbpack.service.core import Service

__all__ = ["local_server", "local_launch_url"]


def local_server(svc: Service) -> LocalJupyter | None:
    """The Jupyter server on this computer the service opens bundles in (local mode only), else None."""
    setting = svc.config.local_jupyter if svc.config.local_mode else None
    return parse_server_url(setting) if setting else None


def local_launch_url(svc: Service, state: dict[str, Any], base_url: str) -> str:
    """Where "Open in JupyterLab on this computer" sends the browser: the local server's nbgitpuller link (with its
    token, so the browser is logged in) for this handle's repository, opening its notebook."""
    server = local_server(svc)
    if server is None:
        raise NotFound(
            "this service runs no JupyterLab on this computer (only `nbpack serve` does)", code="no_local_lab"
        )
    manifest = svc.manifest(state["id"])
    url = links.server_launch_url(
        server.url,
        svc.git_url(state, base_url),
        notebook=manifest["payload"]["notebook"],
        target_dir=links.target_dir_for(state["id"], manifest["title"]),
    )
    return f"{url}&token={server.token}"
