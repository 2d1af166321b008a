"""Hub registry: ESAP IDA ``Facility`` fields plus launch mode, local sites, capabilities and profiles, checked.

A registry is TOML (``[[hubs]]`` tables) or JSON (a list, or ``{"hubs": [...]}``). ESAP's own facility
list can be used instead, with nbpack's extra fields layered on by facility name from an overlay. Which hub suits a
bundle best is ``ranking``.
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

from nbpack.errors import InvalidInput
from nbpack.hub.links import MODES as LAUNCH_MODES
from nbpack.hub.links import USER_OPTION

__all__ = ["Hub", "Profile", "hub_from_dict", "load_esap_facilities", "load_registry", "parse_requirement"]

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
    "open_url",
)
PROFILE_FIELDS = ("slug", "display_name", "packages", "images", "gpu", "memory_gb", "cpus")
# A profile's slug names its JupyterHub server: JupyterHub 6's safe slug (jupyterhub/slugs.py is_valid_safe_slug).
_SLUG = re.compile(r"[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?")


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
    # The hub's JupyterLab has jupyterlab-open-url-parameter (>= 0.4): a bundle whose notebook alone lacks nothing
    # opens through it (``fromurl``, the faster click) on an ``nbgitpuller`` hub; ``launch.launch_modes`` decides.
    open_url: bool = False

    def to_json(self) -> dict:
        """The hub as a JSON-ready dict."""
        return asdict(self)

    def with_profile(self, profile: Profile) -> Hub:
        """The hub as it runs under ``profile``: the profile's fields over the hub's own."""
        own = {k: getattr(profile, k) for k in PROFILE_FIELDS[2:] if getattr(profile, k) is not None}
        return replace(self, **own, profiles=[])


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


def parse_requirement(spec: str) -> Requirement | None:
    """A PEP 508 requirement, or None when ``spec`` is not one (the registry refuses it; ranking notes it)."""
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
        open_url=_open_url(data, launch, where),
    )


def _open_url(data: dict, launch: str, where: str) -> bool:
    flag = _flag(data.get("open_url", launch == "fromurl"), where, "open_url")
    if launch == "binderhub" and flag:
        raise _fail(where, "'open_url' is for a JupyterHub's Lab; a BinderHub opens what it builds")
    if launch == "fromurl" and not flag:
        raise _fail(where, "a hub with launch = \"fromurl\" has the open-url extension; 'open_url' cannot be false")
    return flag


def _packages(value: object, where: str) -> list[str]:
    packages = _str_list(value, where, "packages")
    for spec in packages:
        if parse_requirement(spec) is None:
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
