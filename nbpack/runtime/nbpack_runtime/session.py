"""The run state of one notebook: ``start()`` opens the bundle; requirements are checked against it."""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import now_iso
from .bundle import Bundle
from .display import show
from .errors import RuntimeProblem
from .remote import read_remote
from .requirements import install_hint, satisfies, split_req
from .vocab import MANIFEST

# The bundle root: this package is copied into it.
_HERE = Path(__file__).resolve().parent.parent


@dataclass
class _State:
    bundle: Bundle | None = None
    started: str | None = None
    values: dict[str, dict] = field(default_factory=dict)
    error: str | None = None


STATE = _State()


def _find_root(path: str | os.PathLike | None) -> Path:
    candidates = [path, os.environ.get("NBPACK_BUNDLE_DIR"), _HERE, Path.cwd()]
    for cand in candidates:
        if not cand:
            continue
        p = Path(cand)
        if p.name == MANIFEST and p.is_file():
            return p.parent.resolve()
        if (p / MANIFEST).is_file():
            return p.resolve()
    raise RuntimeProblem(f"no {MANIFEST} found (looked in the argument, NBPACK_BUNDLE_DIR, {_HERE} and {Path.cwd()})")


def start(path: str | None = None) -> Bundle:
    """Open the bundle, check requirements (warn only) and show a short summary; safe to call twice."""
    root = _find_root(path)
    if STATE.bundle is None or STATE.bundle.root != root:
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except json.JSONDecodeError as err:
            raise RuntimeProblem(f"{root / MANIFEST} is not valid JSON ({err})") from None
        begin(Bundle(root, manifest, read_remote(root)))
    return greet()


def begin(bundle: Bundle) -> None:
    """Make ``bundle`` the run's bundle: a fresh start time, no values or error yet."""
    STATE.bundle = bundle
    STATE.started = now_iso()
    STATE.values.clear()
    STATE.error = None


def greet() -> Bundle:
    """Show the open bundle's summary (and what software it misses); the bundle."""
    assert STATE.bundle is not None
    missing = check_requirements(quiet=True)
    text, html_text = STATE.bundle.summary(missing)
    show(text, html_text)
    if missing:
        show(install_hint(missing))
    return STATE.bundle


def current_bundle() -> Bundle:
    return STATE.bundle or start()


def check_requirements(quiet: bool = False) -> list[str]:
    """Requirements from ``payload.requirements`` that are missing or too old (and how to install them)."""
    reqs = ((STATE.bundle or start()).manifest.get("payload") or {}).get("requirements") or []
    missing = []
    for spec in reqs:
        name, constraint = split_req(spec)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(spec.strip())
            continue
        if not satisfies(version, constraint):
            missing.append(spec.strip())
    if missing and not quiet:
        print(install_hint(missing))
    return missing
