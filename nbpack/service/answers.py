"""What the service answers about a handle: the create answer, and a manifest as the API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Stored", "public_manifest"]


@dataclass
class Stored:
    """The answer to a create: the handle's id, manifest (no token), links and lifetimes."""

    id: str
    manifest: dict[str, Any]
    links: dict[str, Any]
    created: bool
    expires: str
    handle_expires: str = ""
    owner: str | None = None
    basket: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The create call's JSON answer (``basket``: what each basket item became, when the request had one)."""
        return {
            **({"basket": self.basket} if self.basket is not None else {}),
            "id": self.id,
            "title": self.manifest["title"],
            "created": self.created,
            "expires": self.expires,
            "links": self.links,
            "content_id": self.manifest["id"],
            "owner": self.owner,
            "handle_expires": self.handle_expires,
        }


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the API shows it: the return token is never echoed back."""
    out = dict(manifest)
    if "returns" in out:
        out["returns"] = {k: v for k, v in out["returns"].items() if k != "token"}
    return out
