"""A hub's launch link for one handle: the ranked profile, its named server, then the pull (nbgitpuller, fromurl).

Which pull is the default (``launch_modes``) is decided here, once: the landing page's button, the API's launch
links and the service's launch redirect all take it from here.
"""

from __future__ import annotations

from nbpack.bundle.lone import lone_gap
from nbpack.errors import InvalidInput
from nbpack.hub import links
from nbpack.hub.ranking import rank_hubs
from nbpack.hub.registry import Hub

__all__ = ["hub_launch_url", "launch_modes"]


def launch_modes(hub: Hub, manifest: dict) -> list[str]:
    """How ``hub`` can open this bundle, the default first (the landing page offers the rest as second links).

    On an ``nbgitpuller`` hub that declares the open-url extension (``open_url``), the notebook alone (``fromurl``)
    comes first when it lacks nothing a clone has (``lone.lone_gap``: no member of the payload's own, a notebook
    Lab uploads without asking): its click skips nbgitpuller's page, its event stream with the fixed 0.5 s poll and
    the clone. A payload with files of its own is cloned first; the notebook alone stays a second link.
    """
    if hub.launch != "nbgitpuller":
        return [hub.launch]
    if not hub.open_url:
        return ["nbgitpuller"]
    return ["nbgitpuller", "fromurl"] if lone_gap(manifest) else ["fromurl", "nbgitpuller"]


def hub_launch_url(
    hub: Hub, bid: str, manifest: dict, *, git_url: str, notebook_url: str, user: str = "", mode: str = ""
) -> str:
    """Where a launch button sends a user: with the profile the ranking picks, on the server named after it when
    the hub allows named servers and ``user`` (the hub user name, which that spawn URL holds) is given.

    ``mode``: one of ``launch_modes`` (default: the first); another is refused."""
    modes = launch_modes(hub, manifest)
    if mode and mode not in modes:
        raise InvalidInput(f"hub {hub.name!r} opens this bundle with {' or '.join(modes)}, not {mode!r}")
    mode = mode or modes[0]
    profile = rank_hubs([hub], manifest)[0].profile
    named = profile.slug if profile and hub.named_servers else ""
    return links.launch_url(
        hub.url,
        mode,
        git_url,
        ref="main",
        notebook=manifest["payload"]["notebook"],
        target_dir=links.target_dir_for(bid, manifest["title"]),
        notebook_url=notebook_url if mode == "fromurl" else "",
        spawn=links.Spawn(hub.profile_option, profile.slug, named, user) if profile else None,
    )
