"""The return bundle: its id, provenance, and the zip ``finish()`` writes (then sends)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import zipfile
from pathlib import Path
from typing import Any

from .base import __version__, now_iso
from .bundle import Bundle
from .checksums import file_sha256
from .crate import crate_metadata
from .display import in_kernel
from .errors import RuntimeProblem
from .notebook_file import (
    find_notebook,
    kernel_name,
    notebook_state,
    read_notebook,
    save_from_frontend,
    stale_message,
)
from .publish import publish_results
from .requirements import split_req
from .sending import send
from .session import STATE, current_bundle
from .vocab import CRATE, RETURN_MANIFEST, media_type, return_id
from .zips import zip_entry


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _provenance(
    bundle: Bundle, notebook: Path | None, doc: dict | None = None, notebook_file: dict | None = None
) -> dict:
    names = [split_req(s)[0] for s in (bundle.manifest.get("payload") or {}).get("requirements") or []]
    packages = {}
    for name in [*names, "pyarrow"]:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "missing"
    prov = {
        "python": platform.python_version(),
        "packages": packages,
        "kernel": kernel_name(notebook),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "runtime_version": __version__,
    }
    # Parameters papermill (or `nbpack run -p`, through papermill's own code) injected, as it records them.
    params = (((doc or {}).get("metadata") or {}).get("papermill") or {}).get("parameters")
    if isinstance(params, dict) and params:
        prov["parameters"] = {str(k): v if _json_safe(v) else repr(v) for k, v in params.items()}
    if notebook_file is not None:
        prov["notebook_file"] = notebook_file
    return prov


def finish(upload: bool = True, status: str | None = None, error: str | None = None) -> Path:
    """Write the return bundle zip next to the notebook (always), then upload it when the bundle says where."""
    bundle = current_bundle()
    if error is not None:
        STATE.error = error
    status = status or ("failed" if STATE.error else "completed")
    nb_rel = (bundle.manifest.get("payload") or {}).get("notebook") or "notebook.ipynb"
    notebook, source = find_notebook(bundle)
    nb_bytes, doc = read_notebook(notebook) if notebook else (None, None)
    notebook_file = {"source": source or None, **notebook_state(doc)}
    if notebook is not None and notebook.name != Path(nb_rel).name:
        notebook_file["file"] = notebook.name  # found under another name (renamed, or a browser's "nb (1).ipynb")
    if notebook is not None and notebook_file["stale"] and os.environ.get("JPY_SESSION_NAME"):
        saved = save_from_frontend(notebook)  # JupyterLab's Run All does not save; try once
        if saved is not None:
            nb_bytes, doc, state = saved
            notebook_file = {**notebook_file, **state, "saved_by_kernel": True}
    if notebook is None:
        print(
            f"nbpack: warning: the notebook file was not found (set NBPACK_NOTEBOOK to its path); the return has no"
            f" {nb_rel}, its outputs and values are sent"
        )
    elif notebook_file["stale"]:
        text, html_text = stale_message(notebook.name, notebook_file)
        if in_kernel():
            from IPython.display import display

            display({"text/plain": text, "text/html": html_text}, raw=True)  # readable in any front end
        else:
            print(text)

    out_dir = bundle.root / "outputs"
    # The notebook travels as the snapshot read above: papermill may rewrite the file while the zip is written.
    entries: list[tuple[str, Path | bytes]] = [(nb_rel, nb_bytes)] if nb_bytes is not None else []
    if out_dir.is_dir():
        entries += [
            (f"outputs/{p.relative_to(out_dir).as_posix()}", p) for p in sorted(out_dir.rglob("*")) if p.is_file()
        ]
    entries.sort(key=lambda e: e[0])
    contents: list[dict[str, Any]] = [
        {"path": a, "bytes": len(p), "sha256": hashlib.sha256(p).hexdigest()}
        if isinstance(p, bytes)
        else {"path": a, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for a, p in entries
    ]
    # The id covers the run as well as the files, so these are fixed before it is computed.
    ended = now_iso()
    run = {
        "status": status,
        "error": STATE.error if status == "failed" else None,
        "started": STATE.started or ended,
        "ended": ended,
        "notebook": nb_rel,
        "values": list(STATE.values.values()),
        "provenance": _provenance(bundle, notebook, doc, notebook_file),
    }
    rid = return_id(bundle.id, [(c["path"], c["sha256"]) for c in contents], run)
    outputs = []
    for c, (_, p) in zip(contents, entries, strict=True):
        if c["path"].startswith("outputs/") and isinstance(p, Path):
            out = dict(c)
            mt = media_type(p.name)
            if mt:
                out["media_type"] = mt
            outputs.append(out)
    publish_results(bundle, rid, outputs)

    manifest = {
        "format": "nbpack-return",
        "format_version": "1.0",
        "id": rid,
        "bundle_id": bundle.id,
        **run,
        "outputs": outputs,
        "contents": contents,
    }
    blobs: list[tuple[str, bytes | Path]] = [
        *entries,
        (RETURN_MANIFEST, json.dumps(manifest, indent=2).encode()),
        (CRATE, json.dumps(crate_metadata(bundle, manifest), indent=2).encode()),
    ]
    target = Path(os.environ.get("NBPACK_RETURN_PATH") or bundle.root)
    if target.is_dir():
        target = target / f"nbpack-return-{rid}.zip"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname, data in sorted(blobs, key=lambda b: b[0]):
            zip_entry(zf, arcname, data)
    os.replace(tmp, target)
    print(f"nbpack: return bundle {rid} ({status}) written to {target}")

    returns = bundle.manifest.get("returns") or {}
    if upload and returns.get("endpoint") and returns.get("token") and not os.environ.get("NBPACK_NO_UPLOAD"):
        try:
            answer = send(target)
            links = {k: v for k, v in answer.items() if k != "id"}
            print(f"nbpack: uploaded as {answer.get('id', rid)}" + (f" {json.dumps(links)}" if links else ""))
        except RuntimeProblem as err:
            print(
                f"nbpack: upload failed: {err}\nThe return bundle is kept at {target}. Send it later with:\n"
                f"  nbpack_runtime.upload({str(target)!r})\nor\n"
                f"  curl -X POST -H 'Authorization: Bearer <token from nbpack.json returns.token>' "
                f"-H 'Content-Type: application/zip' --data-binary @{target} {returns['endpoint']}"
            )
    return target
