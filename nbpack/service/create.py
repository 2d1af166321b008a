"""Turning a create-bundle request (what ESAP posts) into a ``BuildSpec``.

A request is JSON (schema: ``schemas/create-request-1.0.schema.json``): a title, catalogs given
inline (rows, an ESAP query page or several pages) or as uploaded parts, file references, an ESAP
shopping basket, and a payload: an uploaded notebook, an inline one, a payload catalog name (or a workflow's
repository URL), or ESAP Workflow fields inline (``{"url", "ref", "filepath"}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nbpack.bundle import esap_pages, formats, schema
from nbpack.bundle.build import BuildSpec, CatalogInput
from nbpack.bundle.payload_git import resolve_payload
from nbpack.bundle.payloads import PayloadCatalog, workflow_payload
from nbpack.errors import InvalidInput
from nbpack.esap import basket as esap
from nbpack.netguard import AddressPolicy
from nbpack.webhooks import targets

__all__ = ["spec_from_request", "apply_payload", "check_callback_url"]


def check_callback_url(url: Any, allow: Sequence[str] | None = None, *, local_mode: bool = False) -> None:
    """Refuse a callback URL at create time (``nbpack.webhooks.targets.check``: https, a public address or one the
    operator allows for the tenant), so a bad one never surfaces later, when a return arrives.

    A host that does not resolve now is accepted: it names no address to reach yet, and each delivery resolves and
    checks it again (refusing creates while ESAP's DNS hiccups would lose work for nothing)."""
    if url in (None, ""):
        return
    try:
        targets.check(url, allow, local_mode=local_mode)
    except targets.Unresolved:
        pass


def _check_request(req: Any) -> dict[str, Any]:
    if not isinstance(req, dict):
        raise InvalidInput("the create request must be a JSON object")
    errors = schema.iter_errors({**req, "format_version": "1.0"}, "create-request")
    if errors:
        raise InvalidInput(f"create request is invalid: {errors[0][:300]}")
    return req


def apply_payload(
    spec: BuildSpec,
    name: str,
    *,
    catalog_file: str | Path | None = None,
    server: str | None = None,
    payloads: PayloadCatalog | None = None,
    cache_dir: Path | None = None,
    policy: AddressPolicy | None = None,
) -> None:
    """Fill ``spec``'s notebook and software from a named payload (a local catalog, a service, or given);
    ``policy``: the addresses its repository may be fetched from (default: public ones)."""
    from nbpack.bundle.payloads import Payload, load_catalog

    if payloads is None:
        if catalog_file:
            payloads = load_catalog(Path(catalog_file))
        elif server:
            from nbpack.client import Client

            payloads = PayloadCatalog([Payload.from_dict(p) for p in Client(server).payloads()])
        else:
            raise InvalidInput(f"payload {name!r}: give --payloads FILE or --server URL to look it up")
    payload = payloads.get(name)
    resolved = resolve_payload(payload, Path(cache_dir or Path.home() / ".cache" / "nbpack"), policy=policy)
    spec.payload_name = payload.name
    if resolved.notebook is not None:
        spec.notebook = resolved.notebook
        spec.notebook_name = resolved.notebook_name
    else:
        spec.notebook_name = resolved.notebook_name
    spec.requirements = list(dict.fromkeys([*spec.requirements, *resolved.requirements]))
    spec.conda = list(dict.fromkeys([*spec.conda, *resolved.conda]))
    spec.extra_files.update(resolved.extra_files)
    if resolved.source:
        spec.payload_source = dict(resolved.source)
    if payload.hub:
        spec.payload_hub = dict(payload.hub)
    if spec.title == "nbpack bundle" and payload.description:
        spec.title = payload.name


def spec_from_request(
    req: Any,
    parts: Mapping[str, tuple[Path, str]] | None = None,
    *,
    payloads: PayloadCatalog | None = None,
    cache_dir: Path | None = None,
    policy: AddressPolicy | None = None,
) -> BuildSpec:
    """Build the ``BuildSpec`` a create request describes; ``parts`` maps part name → (file, filename).

    ``policy``: where a payload's repository may be fetched from (the service's ``payload_policy``)."""
    req = _check_request(req)
    parts = parts or {}
    spec = BuildSpec(
        title=req.get("title") or "nbpack bundle",
        files=list(req.get("files", [])),
        requirements=list(req.get("requirements", [])),
        conda=list(req.get("conda", [])),
        origin=dict(req.get("origin", {})),
        options=dict(req.get("options", {})),
        results=req.get("results"),
        license=req.get("license"),
    )
    for i, cat in enumerate(req.get("catalogs", [])):
        name = cat["name"]
        where = f"catalogs[{i}] ({name})"
        given = [k for k in ("part", "rows", "esap_page", "esap_pages") if k in cat]
        if len(given) != 1:
            raise InvalidInput(f"{where}: give exactly one of part, rows, esap_page, esap_pages")
        origin = dict(cat.get("origin", {}))
        if "part" in cat:
            if cat["part"] not in parts:
                raise InvalidInput(f"{where}: no uploaded part named {cat['part']!r}")
            path, filename = parts[cat["part"]]
            fmt = cat.get("format")
            if not fmt:
                fmt = formats.from_filename(filename or "")
                if not fmt:
                    raise InvalidInput(f'{where}: cannot tell the format of {filename!r}; set "format"')
            source: Any = path
        elif "rows" in cat:
            source, fmt = cat["rows"], None
        elif "esap_page" in cat:
            source, fmt = cat["esap_page"], None
        else:
            table, provenance = esap_pages.table_from_esap_pages(cat["esap_pages"])
            source, fmt = table, None
            origin = {**provenance, **origin}
        spec.catalogs.append(
            CatalogInput(
                name,
                source,
                fmt=fmt,
                columns=cat.get("columns"),
                description=cat.get("description"),
                origin={k: v for k, v in origin.items() if v} or None,
            )
        )
    if "basket" in req:
        basket = esap.basket_to_inputs(req["basket"])
        taken = {c.name for c in spec.catalogs}
        for name, table in basket.catalogs.items():
            spec.catalogs.append(CatalogInput(name if name not in taken else f"basket_{name}", table))
        names = {f.get("name") for f in spec.files}
        spec.files += [f for f in basket.files if f["name"] not in names]
        spec.skipped = list(basket.skipped)
        spec.basket_report = basket.items
        if basket.origin and not spec.origin:
            spec.origin = {
                k: (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in basket.origin.items()
            }
    given_nb = [k for k in ("notebook", "notebook_part", "payload") if k in req]
    if len(given_nb) > 1:
        raise InvalidInput(f"give only one of notebook, notebook_part, payload (got {', '.join(given_nb)})")
    if "notebook" in req:
        spec.notebook = json.dumps(req["notebook"])
        spec.notebook_name = req.get("notebook_name")
    elif "notebook_part" in req:
        if req["notebook_part"] not in parts:
            raise InvalidInput(f"no uploaded part named {req['notebook_part']!r} for the notebook")
        path, filename = parts[req["notebook_part"]]
        spec.notebook = path.read_bytes()
        spec.notebook_name = req.get("notebook_name") or filename
    elif "payload" in req:
        source = req["payload"]
        if isinstance(source, dict):
            # ESAP's Workflow fields inline, so ESAP need not keep a second registry in step with its own
            inline = workflow_payload(source)
            source, payloads = inline.name, PayloadCatalog([inline])
        elif payloads is None and str(source).startswith(("https://", "http://")):
            payloads = PayloadCatalog([])  # a repository named by its URL (an OSSR workflow) needs no catalog
        if payloads is None:
            raise InvalidInput("this service has no payload catalog (NBPACK_PAYLOADS_FILE)")
        apply_payload(spec, source, payloads=payloads, cache_dir=cache_dir, policy=policy)
    return spec
