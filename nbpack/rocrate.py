"""RO-Crate 1.2 metadata describing a bundle: local files as data entities, remote files as web entities."""

from __future__ import annotations

from typing import Any

__all__ = ["CONTEXT", "bundle_crate", "media_type_for"]

CONTEXT = "https://w3id.org/ro/crate/1.2/context"
PROFILE = "https://w3id.org/ro/crate/1.2"
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


def media_type_for(path: str) -> str:
    """A media type guessed from a file name's suffix."""
    for suffix, media in _MEDIA.items():
        if path.lower().endswith(suffix):
            return media
    return "application/octet-stream"


def _remote_id(uri: str) -> str:
    # Web entities need absolute URIs; a Rucio DID becomes a URN-like identifier ESAP can map back.
    return uri if "://" in uri else f"rucio:{uri}"


def bundle_crate(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` document of a bundle manifest (contents already listed)."""
    graph: list[dict[str, Any]] = [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork",
         "conformsTo": {"@id": PROFILE}, "about": {"@id": "./"}},
    ]
    parts: list[dict[str, str]] = []
    entities: list[dict[str, Any]] = []
    catalogs = {c["path"]: c for c in manifest["catalogs"]}
    notebook = manifest["payload"]["notebook"]
    for entry in manifest["contents"]:
        path = entry["path"]
        if path == "ro-crate-metadata.json":
            continue
        ent: dict[str, Any] = {"@id": path, "@type": "File", "name": path, "contentSize": str(entry["bytes"]),
                               "encodingFormat": media_type_for(path), "sha256": entry["sha256"]}
        if path in catalogs:
            cat = catalogs[path]
            ent["name"] = cat["name"]
            ent["description"] = cat.get("description", f"catalog with {cat['rows']} rows")
            ent["variableMeasured"] = [c["name"] for c in cat["columns"]]
        if path == notebook:
            ent["@type"] = ["File", "SoftwareSourceCode"]
            ent["programmingLanguage"] = "Python"
        parts.append({"@id": path})
        entities.append(ent)
    for ref in manifest["files"]:
        ent = {"@id": _remote_id(ref["uri"]), "@type": "File", "name": ref["name"], "localPath": ref["name"]}
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
        parts.append({"@id": ent["@id"]})
        entities.append(ent)
    root: dict[str, Any] = {
        "@id": "./", "@type": "Dataset", "name": manifest["title"], "identifier": manifest["id"],
        "datePublished": manifest["created"], "hasPart": parts,
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
