"""Opening a handle in a hub: the registry's hubs ranked for its bundle, and where each launch button sends a user."""

from __future__ import annotations

from typing import Any

from nbpack.errors import NbpackError, NotFound
from nbpack.hub.launch import hub_launch_url, launch_modes
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

    def modes(self, manifest: dict[str, Any]) -> dict[str, list[str]]:
        """Each hub's ways to open this bundle, its default first (``launch.launch_modes``)."""
        return {hub.name: launch_modes(hub, manifest) for hub in self.hubs}

    def url(
        self, handle: Handle, manifest: dict[str, Any], hub_name: str, base_url: str, user: str = "", mode: str = ""
    ) -> str:
        """Where the launch button of ``hub_name`` sends a user for this handle (``launch.hub_launch_url``);
        ``mode`` one of the hub's other ways to open it (a second link), else its default."""
        hub = next((h for h in self.hubs if h.name == hub_name), None)
        if hub is None:
            raise NotFound(f"no hub named {hub_name!r} in this service's registry")
        git_url = self.access.git_url(handle, base_url)
        notebook_url = self.access.notebook_url(handle, base_url, manifest["payload"]["notebook"])
        return hub_launch_url(
            hub, handle.id, manifest, git_url=git_url, notebook_url=notebook_url, user=user, mode=mode
        )

    def direct_urls(self, handle: Handle, manifest: dict[str, Any], base_url: str) -> dict[str, dict[str, str]]:
        """Each hub's launch URLs for the default server (no user name) by mode, its default first, computed once
        for the landing page.

        The page links its buttons straight to these: a click then costs no round trip through this service. It
        widens nothing: they carry the git and notebook URLs the page already shows, and the page's no-referrer
        policy keeps its read token from the hub. A hub whose link cannot be made is left out (its button keeps the
        service's launch route, which answers with the reason).
        """
        git_url = self.access.git_url(handle, base_url)
        notebook_url = self.access.notebook_url(handle, base_url, manifest["payload"]["notebook"])
        found: dict[str, dict[str, str]] = {}
        for hub in self.hubs:
            try:
                found[hub.name] = {
                    mode: hub_launch_url(
                        hub, handle.id, manifest, git_url=git_url, notebook_url=notebook_url, mode=mode
                    )
                    for mode in launch_modes(hub, manifest)
                }
            except NbpackError:
                continue
        return found
