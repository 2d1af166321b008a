"""Opening a handle in a hub: the registry's hubs ranked for its bundle, and where each launch button sends a user."""

from __future__ import annotations

from typing import Any

from nbpack.errors import NotFound
from nbpack.hub.launch import hub_launch_url
from nbpack.hub.ranking import rank_hubs
from nbpack.hub.registry import Hub
from nbpack.service.capabilities import Capabilities
from nbpack.service.handle import Handle

__all__ = ["Launcher"]


class Launcher:
    """The service's hub registry, ranked per bundle and turned into launch links."""

    def __init__(self, access: Capabilities, hubs: list[Hub]) -> None:
        self.access = access
        self.hubs = hubs

    def ranking(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        """The hubs able to run a bundle (by its manifest), best first, each with its reasons."""
        return [r.to_json() for r in rank_hubs(self.hubs, manifest)]

    def url(self, handle: Handle, manifest: dict[str, Any], hub_name: str, base_url: str, user: str = "") -> str:
        """Where the launch button of ``hub_name`` sends a user for this handle (``launch.hub_launch_url``)."""
        hub = next((h for h in self.hubs if h.name == hub_name), None)
        if hub is None:
            raise NotFound(f"no hub named {hub_name!r} in this service's registry")
        git_url = self.access.git_url(handle, base_url)
        notebook_url = self.access.notebook_url(handle, base_url, manifest["payload"]["notebook"])
        return hub_launch_url(hub, handle.id, manifest, git_url=git_url, notebook_url=notebook_url, user=user)
