"""Hub registry (ESAP IDA ``Facility`` fields plus launch mode, local sites, capabilities) and ranking.

A registry is TOML (``[[hubs]]`` tables) or JSON (a list, or ``{"hubs": [...]}``). ESAP's own facility
list can be used instead, with nbpack's extra fields layered on by facility name from an overlay.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nbpack.errors import InvalidInput
from nbpack.hub.links import MODES as LAUNCH_MODES
from nbpack.hub.links import USER_OPTION

__all__ = ["Hub", "HubRank", "Profile", "hub_from_dict", "load_registry", "load_esap_facilities", "rank_hubs"]

ESAP_FIELDS = ("name", "description", "url", "facilitytype")
NBPACK_FIELDS = (
    "launch",
    "sites",
    "packages",
    "images",
    "gpu",
    "memory_gb",
    "cpus",
    "profiles",
    "profile_option",
    "named_servers",
)
PROFILE_FIELDS = ("slug", "display_name", "packages", "images", "gpu", "memory_gb", "cpus")
# A profile's slug names its JupyterHub server: JupyterHub 6's safe slug (jupyterhub/slugs.py is_valid_safe_slug).
_SLUG = re.compile(r"[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?")

# Fit weights: a requirement already installed beats one the hub will (or may) install at start.
_INSTALLED = 1.0
_INSTALLABLE = 0.5


@dataclass(kw_only=True)
class Profile:
    """A server profile a hub offers (KubeSpawner's profile_list, or any spawner reading ``user_options``).

    A field left ``None`` is the hub's own; ``slug`` is the value a launch link passes and the name of the
    server it starts where the hub allows named servers.
    """

    slug: str
    display_name: str = ""
    packages: list[str] | None = None
    images: list[str] | None = None
    gpu: bool | None = None
    memory_gb: float | None = None
    cpus: float | None = None

    @property
    def label(self) -> str:
        """How the profile is named to a person."""
        return f"{self.slug!r}" + (f" ({self.display_name})" if self.display_name else "")

    def to_json(self) -> dict:
        """The profile as a JSON-ready dict."""
        return asdict(self)


@dataclass(kw_only=True)
class Hub:
    """One place a bundle can be opened: ESAP Facility fields plus nbpack's launch and capability fields."""

    name: str
    url: str
    description: str = ""
    facilitytype: str = ""
    launch: str = "nbgitpuller"
    sites: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    gpu: bool = False
    memory_gb: float | None = None
    cpus: float | None = None
    profiles: list[Profile] = field(default_factory=list)
    profile_option: str = "profile"
    # JupyterHub's allow_named_servers: a profile link then starts (or reuses) a server named after the profile.
    named_servers: bool = False

    def to_json(self) -> dict:
        """The hub as a JSON-ready dict."""
        return asdict(self)

    def with_profile(self, profile: Profile) -> Hub:
        """The hub as it runs under ``profile``: the profile's fields over the hub's own."""
        own = {k: getattr(profile, k) for k in PROFILE_FIELDS[2:] if getattr(profile, k) is not None}
        return replace(self, **own, profiles=[])


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


# ---------------------------------------------------------------- loading and validation


def _fail(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}")


def _str_list(value: object, where: str, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, f"'{name}' must be a list of non-empty strings")
    return [v.strip() for v in value]


def _positive(value: object, where: str, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise _fail(where, f"'{name}' must be a positive number, got {value!r}")
    return float(value)


def _requirement(spec: str) -> Requirement | None:
    try:
        return Requirement(spec)
    except InvalidRequirement:
        return None


def hub_from_dict(data: dict, *, where: str = "hub") -> Hub:
    """Build a validated Hub from a mapping; errors name the hub and the field."""
    if not isinstance(data, dict):
        raise _fail(where, "each hub must be a table/object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, "'name' must be a non-empty string")
    where = f"hub {name!r}"
    unknown = sorted(set(data) - set(ESAP_FIELDS) - set(NBPACK_FIELDS))
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(map(repr, unknown))}")
    url = data.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise _fail(where, f"'url' must be an http(s) URL, got {url!r}")
    for text in ("description", "facilitytype"):
        if not isinstance(data.get(text, ""), str):
            raise _fail(where, f"'{text}' must be a string")
    facilitytype = data.get("facilitytype", "")
    # ESAP facilities carry no launch mode; a BinderHub says so in its type.
    default_launch = "binderhub" if "binder" in facilitytype.lower() else "nbgitpuller"
    launch = data.get("launch", default_launch)
    if launch not in LAUNCH_MODES:
        raise _fail(where, f"'launch' must be one of {', '.join(LAUNCH_MODES)}, got {launch!r}")
    packages = _packages(data.get("packages", []), where)
    gpu = _flag(data.get("gpu", False), where, "gpu")
    # The user_options key a launch link sets (``opt-<key>=<slug>``); KubeSpawner's profile_list reads "profile".
    option = data.get("profile_option", "profile")
    if not isinstance(option, str) or not USER_OPTION.fullmatch(option):
        raise _fail(where, f"'profile_option' must be a user-option name (letters, digits, '_.-'), got {option!r}")
    profiles = data.get("profiles", [])
    if not isinstance(profiles, list):
        raise _fail(where, "'profiles' must be a list of tables/objects")
    parsed = [_profile_from_dict(p, f"{where} profile #{i + 1}") for i, p in enumerate(profiles)]
    if len({p.slug for p in parsed}) < len(parsed):
        raise _fail(where, "two profiles have the same 'slug'")
    return Hub(
        name=name.strip(),
        url=url,
        description=data.get("description", ""),
        facilitytype=facilitytype,
        launch=launch,
        sites=_str_list(data.get("sites", []), where, "sites"),
        packages=packages,
        images=_str_list(data.get("images", []), where, "images"),
        gpu=gpu,
        memory_gb=_positive(data.get("memory_gb"), where, "memory_gb"),
        cpus=_positive(data.get("cpus"), where, "cpus"),
        profiles=parsed,
        profile_option=option,
        named_servers=_flag(data.get("named_servers", False), where, "named_servers"),
    )


def _packages(value: object, where: str) -> list[str]:
    packages = _str_list(value, where, "packages")
    for spec in packages:
        if _requirement(spec) is None:
            raise _fail(where, f"'packages' entry {spec!r} is not a pip requirement (name or name==version)")
    return packages


def _flag(value: object, where: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"'{name}' must be true or false, got {value!r}")
    return value


def _profile_from_dict(data: object, where: str) -> Profile:
    if not isinstance(data, dict):
        raise _fail(where, "each profile must be a table/object")
    unknown = sorted(set(data) - set(PROFILE_FIELDS))
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(map(repr, unknown))}")
    slug = data.get("slug")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug) or "--" in slug:
        raise _fail(
            where,
            f"'slug' must be 1-30 lowercase letters, digits and single hyphens, starting with a letter, got {slug!r}",
        )
    where = f"{where} {slug!r}"
    name = data.get("display_name", "")
    if not isinstance(name, str):
        raise _fail(where, "'display_name' must be a string")
    return Profile(
        slug=slug,
        display_name=name.strip(),
        packages=_packages(data["packages"], where) if "packages" in data else None,
        images=_str_list(data["images"], where, "images") if "images" in data else None,
        gpu=_flag(data["gpu"], where, "gpu") if "gpu" in data else None,
        memory_gb=_positive(data.get("memory_gb"), where, "memory_gb"),
        cpus=_positive(data.get("cpus"), where, "cpus"),
    )


def _read_doc(path: Path, what: str) -> object:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        if path.suffix.lower() == ".json":
            return json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} {path.name!r} is not valid {path.suffix[1:].upper()}: {exc}") from None
    raise InvalidInput(f"{what} {path.name!r} must be a .toml or .json file")


def _unique(hubs: list[Hub], what: str) -> list[Hub]:
    seen: set[str] = set()
    for hub in hubs:
        if hub.name in seen:
            raise InvalidInput(f"{what}: hub name {hub.name!r} appears twice")
        seen.add(hub.name)
    return hubs


def load_registry(path: Path) -> list[Hub]:
    """Load and validate a hub registry from TOML (``[[hubs]]``) or JSON (list or ``{"hubs": [...]}``)."""
    doc = _read_doc(path, "hub registry")
    entries = doc.get("hubs") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise InvalidInput(f"hub registry {Path(path).name!r} must hold a 'hubs' list")
    hubs = [hub_from_dict(entry, where=f"hub #{i + 1}") for i, entry in enumerate(entries)]
    return _unique(hubs, f"hub registry {Path(path).name!r}")


def load_esap_facilities(
    facilities: list[dict] | dict | Path,
    overlay: dict[str, dict] | Path | None = None,
) -> list[Hub]:
    """Hubs from ESAP's IDA facility list (plain or a DRF page), with nbpack fields overlaid by name.

    Each facility launches as a BinderHub (``v2/git`` links, as ESAP's own Deploy does) unless the overlay gives
    it another ``launch``. ESAP-only fields such as ``id`` are ignored; the overlay may only set nbpack's fields
    and must only name facilities ESAP lists, so a typo in the overlay is an error rather than a silently plain hub.
    """
    doc = _read_doc(facilities, "ESAP facility list") if isinstance(facilities, Path) else facilities
    if isinstance(doc, dict) and "results" in doc:
        doc = doc["results"]
    if not isinstance(doc, list) or not all(isinstance(f, dict) for f in doc):
        raise InvalidInput("ESAP facility list must be a list of facility objects (or a page with 'results')")
    extra = _read_doc(overlay, "facility overlay") if isinstance(overlay, Path) else (overlay or {})
    if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
        raise InvalidInput("facility overlay must map facility names to tables of nbpack fields")
    names = {f.get("name") for f in doc}
    for name, fields in extra.items():
        if name not in names:
            raise InvalidInput(f"facility overlay names {name!r}, which the ESAP facility list does not have")
        foreign = sorted(set(fields) - set(NBPACK_FIELDS))
        if foreign:
            raise InvalidInput(
                f"facility overlay for {name!r}: field(s) {', '.join(map(repr, foreign))} "
                "cannot be overlaid; "
                f"allowed: {', '.join(NBPACK_FIELDS)}"
            )
    hubs = []
    for i, facility in enumerate(doc):
        base = {
            k: facility[k].strip() if isinstance(facility[k], str) else facility[k]
            for k in ESAP_FIELDS
            if facility.get(k) is not None
        }
        # ESAP's Deploy view builds a BinderHub ``v2/git`` link for every facility, whatever its type (all of
        # ESAP's own are "jupyterhub"): launched as ESAP launches them unless the operator's file says otherwise.
        merged = base | {"launch": "binderhub"} | extra.get(facility.get("name"), {})
        hubs.append(hub_from_dict(merged, where=f"ESAP facility #{i + 1}"))
    return _unique(hubs, "ESAP facility list")


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
        req = _requirement(spec) if isinstance(spec, str) else None
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
