"""Which hubs suit a bundle, best first: whether each can run it (GPU, memory, CPUs, pinned packages, images),
where its referenced data sit (local sites), how much of its environment is already installed, and which of a
hub's profiles to start; each verdict with the reasons a person reads on the landing page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nbpack.hub.registry import Hub, Profile, parse_requirement

__all__ = ["HubRank", "rank_hubs"]

# Fit weights: a requirement already installed beats one the hub will (or may) install at start.
_INSTALLED = 1.0
_INSTALLABLE = 0.5


@dataclass
class HubRank:
    """How well one hub suits one bundle: whether it can run it, data locality, score and the reasons."""

    hub: Hub
    can_run: bool
    local_share: float
    score: float
    reasons: list[str]
    profile: Profile | None = None

    def to_json(self) -> dict:
        """The ranking entry as the API returns it (``profile`` only for a hub that lists profiles)."""
        doc = {
            "hub": self.hub.to_json(),
            "can_run": self.can_run,
            "local_share": round(self.local_share, 4),
            "score": self.score,
            "reasons": list(self.reasons),
        }
        if self.profile is not None:
            doc["profile"] = self.profile.to_json()
        return doc


# ---------------------------------------------------------------- ranking


def _percent(share: float) -> int:
    # Floor, so "100%" only ever means all of it; the tiny offset absorbs float noise (0.29*100).
    return math.floor(share * 100 + 1e-9)


def _site_list(sites: list[str]) -> str:
    return sites[0] if len(sites) == 1 else ", ".join(sites[:-1]) + " and " + sites[-1]


def _sized(f: dict) -> bool:
    return isinstance(f.get("size"), int) and not isinstance(f["size"], bool)


def _locality(hub: Hub, files: list[dict]) -> tuple[float, str | None]:
    """Share of the referenced data held at the hub's sites, and the sentence saying so.

    Weighted by ``size``; a file without a size weighs the mean size of those with one, and when no
    file has a size (or all sizes are 0) every file weighs the same, so the share is by count.
    """
    if not files:
        return 0.0, None
    sizes = [f["size"] for f in files if _sized(f)]
    by_count = not sizes or sum(sizes) == 0
    mean = sum(sizes) / len(sizes) if sizes else 1.0
    local_sites = {s.lower(): s for s in hub.sites}
    total = local = 0.0
    n_local = 0
    holding: list[str] = []
    for f in files:
        weight = 1.0 if by_count else float(f["size"] if _sized(f) else mean)
        total += weight
        site = str(f.get("site") or "").lower()
        if site in local_sites:
            local += weight
            n_local += 1
            if local_sites[site] not in holding:
                holding.append(local_sites[site])
    share = local / total if total else 0.0
    if not holding:
        return 0.0, "holds none of the referenced data at its sites"
    where = _site_list(holding)
    if by_count:
        return share, f"holds {n_local} of {len(files)} referenced files at {where}"
    if len(sizes) < len(files):
        return share, (
            f"holds about {_percent(share)}% of the referenced data at {where} "
            f"({len(files) - len(sizes)} file(s) without a size counted at the mean size)"
        )
    return share, f"holds {_percent(share)}% of the referenced bytes at {where}"


def _pinned(spec: str) -> tuple[str, Version | None]:
    """A hub package's canonical name and its version when the hub pins one with ``==``."""
    req = Requirement(spec)
    pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    try:
        return canonicalize_name(req.name), Version(pins[0]) if len(pins) == 1 else None
    except InvalidVersion:
        return canonicalize_name(req.name), None


@dataclass
class _Fit:
    weight: float = 0.0
    count: int = 0
    blocking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_packages(hub: Hub, specs: list[str], fit: _Fit, *, hard: bool) -> None:
    """Score ``specs`` against the hub; ``hard`` needs (payload.hub.packages) block when unmet."""
    installed = dict(_pinned(p) for p in hub.packages)
    for spec in specs:
        req = parse_requirement(spec) if isinstance(spec, str) else None
        if req is None:
            fit.notes.append(f"cannot check requirement {spec!r}")
            continue
        fit.count += 1
        if not hard and hub.launch == "binderhub":
            fit.weight += _INSTALLABLE
            continue
        if not hub.packages:
            fit.weight += _INSTALLABLE
            continue
        name = canonicalize_name(req.name)
        unmet = fit.blocking if hard else fit.notes
        if name not in installed:
            unmet.append(f"lacks {spec}" + (", which the payload needs from its hub" if hard else ""))
            continue
        version = installed[name]
        if req.specifier and version is not None and not req.specifier.contains(version, prereleases=True):
            unmet.append(f"lacks {spec} (has {version})")
            continue
        fit.weight += _INSTALLED
        fit.notes.append(f"has {req.name}" + (f" {version}" if version is not None else ""))


def _resources(hub: Hub, needs: dict, blocking: list[str], notes: list[str]) -> int:
    """Check GPU and memory; return the count of surplus resources (an unneeded GPU)."""
    surplus = 0
    if needs.get("gpu"):
        if hub.gpu:
            notes.append("has a GPU")
        else:
            blocking.append("needs a GPU; this hub has none")
    elif hub.gpu:
        surplus += 1
    need_mem = needs.get("memory_gb")
    if isinstance(need_mem, int | float) and not isinstance(need_mem, bool) and need_mem > 0:
        if hub.memory_gb is None:
            notes.append(f"does not list its memory; the payload needs {need_mem:g} GB")
        elif hub.memory_gb < need_mem:
            blocking.append(f"needs {need_mem:g} GB of memory; this hub offers {hub.memory_gb:g} GB")
        else:
            notes.append(f"offers {hub.memory_gb:g} GB of memory (needs {need_mem:g} GB)")
    return surplus


def _rank_one(hub: Hub, manifest: dict) -> tuple[HubRank, tuple]:
    if not hub.profiles:
        return _rank_env(hub, manifest)
    # Each profile is ranked as the hub running it; the best one stands for the hub.
    options = [_rank_env(hub.with_profile(p), manifest) + (i,) for i, p in enumerate(hub.profiles)]
    rank, key, index = min(options, key=lambda option: (option[1], option[2]))
    chosen = hub.profiles[index]
    runnable = sum(r.can_run for r, _, _ in options)
    if not rank.can_run:
        why = f"none of its {len(options)} profiles can run it; the closest is {chosen.label}"
    elif len(options) == 1:
        why = f"starts profile {chosen.label}"
    elif runnable == 1:
        why = f"starts profile {chosen.label}, the only one of its {len(options)} profiles that can run it"
    else:
        why = f"starts profile {chosen.label}, the best of {runnable} profiles that can run it"
    ranked = HubRank(
        hub=hub,
        can_run=rank.can_run,
        local_share=rank.local_share,
        score=rank.score,
        reasons=[why, *rank.reasons],
        profile=chosen,
    )
    return ranked, key


def _rank_env(hub: Hub, manifest: dict) -> tuple[HubRank, tuple]:
    payload = manifest.get("payload") or {}
    needs = payload.get("hub") or {}
    files = [f for f in manifest.get("files") or [] if isinstance(f, dict)]
    share, where = _locality(hub, files)
    fit = _Fit()
    _check_packages(hub, list(needs.get("packages") or []), fit, hard=True)
    _check_packages(hub, list(payload.get("requirements") or []), fit, hard=False)
    surplus = _resources(hub, needs, fit.blocking, fit.notes)
    if hub.launch == "binderhub" and payload.get("requirements"):
        fit.notes.append("builds the environment from requirements.txt")
    elif not hub.packages and fit.count:
        fit.notes.append("lists no packages; assumed to install the requirements itself")
    fit_share = fit.weight / fit.count if fit.count else 1.0
    can_run = not fit.blocking
    percent = _percent(share)
    score = round(percent + 0.99 * fit_share, 4) if can_run else -1.0
    reasons = fit.blocking + ([where] if where else []) + fit.notes
    key = (not can_run, -percent, -fit_share, surplus, hub.memory_gb or 0.0, hub.cpus or 0.0, hub.name)
    return HubRank(hub=hub, can_run=can_run, local_share=share, score=score, reasons=reasons), key


def rank_hubs(hubs: list[Hub], manifest: dict) -> list[HubRank]:
    """Rank hubs for a bundle: runnable first, then by local data share, fit, fewer surplus resources.

    - Local share: share of the bytes of ``files[]`` whose ``site`` is one of the hub's sites (see
      ``_locality`` for files without a size), compared in whole percent.
    - Hard needs (``payload.hub``: ``packages``, ``gpu``, ``memory_gb``) unmet → the hub cannot run the
      payload; it goes last with the reason. An unlisted hub memory is not held against it.
    - Fit over ``payload.requirements`` and ``payload.hub.packages``: an installed match counts 1 (a
      version is checked only when the hub pins one with ``==``), a missing one 0. A hub with an empty
      ``packages`` list is of unknown capability and, like a BinderHub (which builds the environment from
      requirements.txt), counts 0.5 per requirement: assumed able to install it, but slower than
      having it.
    - Ties go to the hub with fewer surplus resources: no unneeded GPU, then less memory, fewer CPUs.
    - ``score`` = whole-percent local share + 0.99 × fit share (so it orders like the above); -1 when the
      hub cannot run the payload.
    - A hub listing ``profiles`` is ranked as each profile (its fields over the hub's); the best one, by the
      same rules (first listed on a tie), stands for the hub, is named in ``profile`` and in the first reason.
    """
    ranked = sorted((_rank_one(hub, manifest) for hub in hubs), key=lambda pair: pair[1])
    return [rank for rank, _ in ranked]
