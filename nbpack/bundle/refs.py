"""File references: data-lake files a bundle points to (never the files themselves)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nbpack.errors import InvalidInput

__all__ = ["CHECKSUM_LENGTHS", "parse_ref", "parse_cli_file", "load_refs", "normalise_refs", "uri_kind"]

CHECKSUM_LENGTHS = {"adler32": 8, "md5": 32, "sha256": 64}
_FIELDS = {"name", "uri", "size", "checksums", "site", "media_type", "description"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_URL_SCHEMES = ("https", "http", "s3", "root", "davs", "dav", "file")
_DID = re.compile(r"^[A-Za-z0-9_.-]+:[^/\s][^\s]*$")


def uri_kind(uri: str) -> str:
    """The kind of a reference URI: a URL scheme (``https``, ``s3``, ...) or ``rucio`` for a DID."""
    scheme, sep, rest = uri.partition("://")
    if sep:
        if scheme.lower() not in _URL_SCHEMES or not rest:
            raise InvalidInput(f"unsupported file URI {uri!r}: use https, s3, root, davs or a Rucio DID scope:name")
        return scheme.lower()
    if uri.startswith("rucio:"):
        uri = uri[len("rucio:") :]
    if _DID.match(uri):
        return "rucio"
    raise InvalidInput(f"file URI {uri!r} is neither a URL nor a Rucio DID (scope:name)")


def _clean_uri(uri: str) -> str:
    # "rucio:scope:name" is accepted on the command line; the manifest keeps the bare DID.
    kind = uri_kind(uri)
    if kind == "rucio" and uri.startswith("rucio:") and uri.count(":") >= 2:
        return uri[len("rucio:") :]
    return uri


def parse_ref(raw: Any, where: str = "file reference") -> dict[str, Any]:
    """Check one file reference object and return it normalised (lowercase hex, bare DIDs)."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected an object with name and uri, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        # repr keeps the message on one line whatever the keys hold (and sorts keys of any type).
        raise InvalidInput(f"{where}: unknown field(s) {', '.join(sorted(repr(k)[:80] for k in unknown))}")
    name, uri = raw.get("name"), raw.get("uri")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"{where}: name {name!r} must be 1-128 letters, digits, '_', '.', '-'")
    where = f"file reference {name!r}"
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"{where}: uri is missing")
    ref: dict[str, Any] = {"name": name, "uri": _clean_uri(uri.strip())}
    if "size" in raw and raw["size"] is not None:
        size = raw["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInput(f"{where}: size must be a non-negative integer, got {size!r}")
        ref["size"] = size
    if raw.get("checksums"):
        sums = raw["checksums"]
        if not isinstance(sums, dict):
            raise InvalidInput(f'{where}: checksums must be an object like {{"adler32": "0a1b2c3d"}}')
        clean = {}
        for alg, value in sums.items():
            if alg not in CHECKSUM_LENGTHS:
                raise InvalidInput(f"{where}: unknown checksum {alg!r} (use adler32, md5 or sha256)")
            n = CHECKSUM_LENGTHS[alg]
            if not isinstance(value, str) or not re.fullmatch(rf"[0-9a-fA-F]{{{n}}}", value):
                raise InvalidInput(f"{where}: {alg} checksum must be {n} hex digits, got {value!r}")
            clean[alg] = value.lower()
        ref["checksums"] = clean
    for key in ("site", "media_type", "description"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], str):
                raise InvalidInput(f"{where}: {key} must be a string")
            ref[key] = raw[key]
    return ref


def parse_cli_file(spec: str) -> dict[str, Any]:
    """Parse ``NAME=URI`` from the command line into a reference."""
    name, sep, uri = spec.partition("=")
    if not sep or not name or not uri:
        raise InvalidInput(f"--file {spec!r}: expected NAME=URI")
    return parse_ref({"name": name, "uri": uri}, f"--file {name}")


def load_refs(path: Path) -> list[dict[str, Any]]:
    """Read a JSON list of references (``--files REFS.json``)."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a JSON list of file references")
    return [parse_ref(item, f"{path} item {i}") for i, item in enumerate(data)]


def normalise_refs(refs: list[Any]) -> list[dict[str, Any]]:
    """Check a list of references and that their names are unique."""
    out = [parse_ref(r, f"file reference {i}") for i, r in enumerate(refs)]
    seen: set[str] = set()
    for ref in out:
        if ref["name"] in seen:
            raise InvalidInput(f"file reference name {ref['name']!r} is used twice")
        seen.add(ref["name"])
    return out
