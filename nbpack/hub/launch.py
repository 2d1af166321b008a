"""A hub's launch link for one handle: the ranked profile, its named server, then the pull (nbgitpuller, fromurl)."""

from __future__ import annotations

from nbpack.hub import links
from nbpack.hub.ranking import rank_hubs
from nbpack.hub.registry import Hub

__all__ = ["hub_launch_url"]


def hub_launch_url(hub: Hub, bid: str, manifest: dict, *, git_url: str, notebook_url: str, user: str = "") -> str:
    """Where a launch button sends a user: with the profile the ranking picks, on the server named after it when
    the hub allows named servers and ``user`` (the hub user name, which that spawn URL holds) is given."""
    profile = rank_hubs([hub], manifest)[0].profile
    named = profile.slug if profile and hub.named_servers else ""
    return links.launch_url(
        hub.url,
        hub.launch,
        git_url,
        ref="main",
        notebook=manifest["payload"]["notebook"],
        target_dir=links.target_dir_for(bid, manifest["title"]),
        notebook_url=notebook_url if hub.launch == "fromurl" else "",
        spawn=links.Spawn(hub.profile_option, profile.slug, named, user) if profile else None,
    )
