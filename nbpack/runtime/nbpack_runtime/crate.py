"""The return's RO-Crate metadata (``ro-crate-metadata.json``)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .vocab import CRATE, MEDIA_TYPES

__all__ = [
    "DEFAULT_LICENSE",
    "PROCESS_RUN_PROFILE",
    "RETURN_CONTEXT",
    "RETURN_PROFILE",
    "crate_metadata",
    "local_id",
    "remote_entity",
    "remote_id",
]

# The crate words both crates use (nbpack's bundle crate imports them from here), so one remote file has one @id in
# the bundle's crate and the return's.
# The return crate is RO-Crate 1.1, unlike the bundle's (1.2): the Process Run Crate profile it declares (0.5) is
# defined on RO-Crate 1.1, and a crate valid for that profile says so in its descriptor (roc-validator's
# ro-crate-1.1 check 5.3, inherited by process-run-crate-0.5).
RETURN_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
RETURN_PROFILE = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN_PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
# A bundle whose builder names no license gets this one (docs/design.md, `nbpack build -h`): attribution is what
# astronomy archives usually ask for, and RO-Crate requires some license on the root.
DEFAULT_LICENSE = {
    "spdx": "CC-BY-4.0",
    "url": "https://spdx.org/licenses/CC-BY-4.0",
    "name": "Creative Commons Attribution 4.0 International",
}
# Characters a URI may hold as they are (RFC 3986 reserved + unreserved, and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def remote_id(uri: str) -> str:
    """The ``@id`` of a data-lake file: its URL, or ``rucio:scope:name`` for a DID, escaped into a valid URI."""
    # Web entities need absolute URIs; a bare DID "scope:name" would read as a URI with scheme "scope".
    return urllib.parse.quote(uri if "://" in uri else f"rucio:{uri}", safe=_URI_SAFE)


def local_id(path: str) -> str:
    """The ``@id`` of a file inside the crate: its path relative to the root, percent-encoded (spaces, commas,
    non-ASCII), which RO-Crate consumers decode back to the file name."""
    return urllib.parse.quote(path, safe="/")


def _crate_time(stamp: str) -> str:
    # Process Run Crate's checks read ISO 8601 with a numeric offset; now_iso() writes "Z".
    return stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp


def remote_entity(ref: dict) -> dict:
    """The web data entity of one manifest ``files[]`` entry."""
    ent: dict[str, Any] = {
        "@id": remote_id(ref["uri"]),
        "@type": "File",
        "name": ref["name"],
        "localPath": ref["name"],
    }
    if "size" in ref:
        ent["contentSize"] = str(ref["size"])
    if ref.get("media_type"):
        ent["encodingFormat"] = ref["media_type"]
    if (ref.get("checksums") or {}).get("sha256"):
        ent["sha256"] = ref["checksums"]["sha256"]
    if ref.get("site"):
        ent["contentLocation"] = ref["site"]
    if "://" not in ref["uri"]:
        ent["identifier"] = ref["uri"]
    return ent


def crate_metadata(bundle: Bundle, manifest: dict) -> dict:
    """RO-Crate 1.1 metadata following the Process Run Crate profile: one CreateAction whose instrument is the
    notebook, object the bundle's catalogs and data-lake files, result the outputs."""
    lic = bundle.manifest.get("license")
    if not (isinstance(lic, dict) and isinstance(lic.get("url"), str)):
        lic = DEFAULT_LICENSE  # a manifest from before licenses (or hand-edited): the documented default
    lic_id = remote_id(lic["url"])
    bundle_ref = f"#bundle-{bundle.id}"
    inputs: list[dict] = []
    for c in bundle.manifest.get("catalogs", []):
        # Catalogs stay in the bundle, not in the return: described here, not part of this crate's payload.
        inputs.append(
            {
                "@id": f"#catalog-{c['name']}",
                "@type": "Dataset",
                "name": c["name"],
                "sha256": c["sha256"],
                "contentSize": str(c["bytes"]),
                "isPartOf": {"@id": bundle_ref},
                "encodingFormat": MEDIA_TYPES[".parquet"],
            }
        )
    # Two references to one file (under two names) are one entity: an @id appears once in a crate's graph.
    remote: list[dict] = []
    seen: set[str] = set()
    for ent in map(remote_entity, bundle.manifest.get("files", [])):
        if ent["@id"] not in seen:
            seen.add(ent["@id"])
            remote.append(ent)
    inputs += remote
    outputs = [
        {
            "@id": local_id(o["path"]),
            "@type": "File",
            "name": o["path"].removeprefix("outputs/"),
            "contentSize": str(o["bytes"]),
            "sha256": o["sha256"],
            **({"encodingFormat": o["media_type"]} if o.get("media_type") else {}),
        }
        for o in manifest["outputs"]
    ]
    nb_entry = next((c for c in manifest["contents"] if c["path"] == manifest["notebook"]), None)
    notebook: dict[str, Any] = {
        "@type": "SoftwareSourceCode",
        "name": Path(manifest["notebook"]).name,
        "programmingLanguage": "Python",
        "encodingFormat": MEDIA_TYPES[".ipynb"],
        "description": "The notebook as executed, with its outputs.",
    }
    if nb_entry:
        notebook.update(
            {
                "@id": local_id(nb_entry["path"]),
                "@type": ["File", "SoftwareSourceCode"],
                "contentSize": str(nb_entry["bytes"]),
                "sha256": nb_entry["sha256"],
            }
        )
    else:
        # Not saved where finish() could find it: still the instrument, but not a file of this crate.
        notebook["@id"] = "#notebook"
    failed = manifest["status"] != "completed"
    action: dict[str, Any] = {
        "@id": "#run",
        "@type": "CreateAction",
        "name": f"Run of {bundle.title}",
        "description": f"Execution of notebook {manifest['notebook']} of nbpack bundle {bundle.id}",
        "startTime": _crate_time(manifest["started"]),
        "endTime": _crate_time(manifest["ended"]),
        "actionStatus": "http://schema.org/FailedActionStatus" if failed else "http://schema.org/CompletedActionStatus",
        "instrument": {"@id": notebook["@id"]},
        "object": [{"@id": e["@id"]} for e in inputs],
        "result": [{"@id": o["@id"]} for o in outputs],
    }
    if failed and manifest.get("error"):
        action["error"] = manifest["error"]
    parts = ([{"@id": notebook["@id"]}] if nb_entry else []) + [{"@id": e["@id"]} for e in outputs + remote]
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"nbpack return {manifest['id']}: run of {bundle.title}",
        "description": f"Results of running nbpack bundle {bundle.id} ({bundle.title}): the executed notebook "
        f"and its outputs; status {manifest['status']}.",
        "identifier": manifest["id"],
        "datePublished": manifest["ended"],
        "license": {"@id": lic_id},
        "conformsTo": {"@id": PROCESS_RUN_PROFILE},
        "isBasedOn": {"@id": bundle_ref},
        "hasPart": parts,
        "mentions": {"@id": "#run"},
    }
    descriptor = {"@id": CRATE, "@type": "CreativeWork", "conformsTo": {"@id": RETURN_PROFILE}, "about": {"@id": "./"}}
    context = [
        {
            "@id": PROCESS_RUN_PROFILE,
            "@type": ["CreativeWork", "Profile"],
            "name": "Process Run Crate",
            "version": "0.5",
        },
        {
            "@id": lic_id,
            "@type": "CreativeWork",
            "name": lic.get("name") or lic["url"],
            **({"identifier": lic["spdx"]} if lic.get("spdx") else {}),
        },
        {"@id": bundle_ref, "@type": "CreativeWork", "name": bundle.title, "identifier": bundle.id},
    ]
    return {"@context": RETURN_CONTEXT, "@graph": [descriptor, root, notebook, *outputs, action, *inputs, *context]}
