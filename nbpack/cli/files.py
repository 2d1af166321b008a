"""The commands on bundle files on this computer: build one, validate and inspect one (or a return bundle)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from nbpack.cli.echo import echo_json
from nbpack.errors import InvalidInput, NbpackError

__all__ = ["build", "inspect", "validate"]


def _parse_catalog(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise InvalidInput(f"--catalog {spec!r}: expected NAME=PATH")
    if not Path(path).is_file():
        raise InvalidInput(f"--catalog {name}: {path}: no such file")
    return name, Path(path)


def _columns_for(path: Path) -> dict[str, dict[str, str]] | None:
    # A sidecar "<table>.columns.json" carries ESAP's column metadata (unit, ucd, description).
    side = path.with_name(path.name.split(".")[0] + ".columns.json")
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{side}: not a JSON object of column metadata ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{side}: expected an object mapping column name to metadata")
    return doc


@click.command()
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="Bundle zip to write.")
@click.option("--title", default=None, help="Bundle title (default: from the notebook or 'nbpack bundle').")
@click.option(
    "--catalog",
    "catalogs",
    multiple=True,
    metavar="NAME=PATH",
    help="Catalog table: Parquet, Arrow IPC, CSV, JSON rows, ESAP query page, VOTable.",
)
@click.option("--file", "file_specs", multiple=True, metavar="NAME=URI", help="Data-lake file reference.")
@click.option("--files", "refs_file", type=click.Path(dir_okay=False), help="JSON list of file references.")
@click.option("--notebook", type=click.Path(dir_okay=False), help="Template notebook (default: a starter).")
@click.option("--require", "requires", multiple=True, metavar="SPEC", help="pip requirement of the payload.")
@click.option("--conda", "condas", multiple=True, metavar="SPEC", help="conda package of the payload.")
@click.option("--payload", default=None, help="Named payload from a catalog (--payloads FILE or --server URL).")
@click.option("--payloads", "payloads_file", type=click.Path(dir_okay=False), help="Local payload catalog file.")
@click.option("--server", default=None, help="nbpack service to take the payload catalog from.")
@click.option("--origin-service", default=None, help="Provenance: the ESAP service the results came from.")
@click.option("--origin-query", default=None, help="Provenance: the query text.")
@click.option("--allow-http", is_flag=True, help="Let the runtime fetch plain-http file URLs.")
@click.option(
    "--license",
    "license_",
    default=None,
    metavar="SPDX|URL",
    help="License of the bundle and its returns: an SPDX identifier or a URL (default: CC-BY-4.0).",
)
@click.option(
    "--encoding",
    default=None,
    metavar="CODEC",
    help="Text encoding of the CSV/TSV catalogs (default UTF-8): latin-1, …",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def build(
    out: str,
    title: str | None,
    catalogs: tuple[str, ...],
    file_specs: tuple[str, ...],
    refs_file: str | None,
    notebook: str | None,
    requires: tuple[str, ...],
    condas: tuple[str, ...],
    payload: str | None,
    payloads_file: str | None,
    server: str | None,
    origin_service: str | None,
    origin_query: str | None,
    allow_http: bool,
    license_: str | None,
    encoding: str | None,
    as_json: bool,
) -> None:
    """Build a bundle zip from catalogs, file references and a payload."""
    from nbpack.bundle import formats
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
    from nbpack.bundle.refs import load_refs, parse_cli_file

    files = [parse_cli_file(s) for s in file_specs]
    if refs_file:
        files += load_refs(Path(refs_file))
    spec = BuildSpec(
        title=title or "nbpack bundle", files=files, requirements=list(requires), conda=list(condas), license=license_
    )
    for item in catalogs:
        name, path = _parse_catalog(item)
        text = formats.from_filename(path.name) in ("csv", "tsv")
        spec.catalogs.append(CatalogInput(name, path, columns=_columns_for(path), encoding=encoding if text else None))
    if notebook:
        spec.notebook = Path(notebook)
        if not title:
            spec.title = Path(notebook).stem.replace("_", " ").replace("-", " ") or spec.title
    if payload:
        if notebook:
            raise InvalidInput("give either --notebook or --payload, not both")
        from nbpack.netguard import AddressPolicy
        from nbpack.service.create import apply_payload

        # The user's own machine fetches: loopback as in local mode, plus the hosts they list (their network's git).
        policy = AddressPolicy.parse(
            os.environ.get("NBPACK_PAYLOAD_ALLOW"), setting="NBPACK_PAYLOAD_ALLOW", loopback=True
        )
        apply_payload(spec, payload, catalog_file=payloads_file, server=server, policy=policy)
    if origin_service or origin_query:
        spec.origin = {k: v for k, v in (("service", origin_service), ("query", origin_query)) if v}
    if allow_http:
        spec.options = {"allow_http": True}
    from nbpack.cli import progress

    started = time.perf_counter()
    with progress.rows() as on_rows:
        manifest = build_bundle(spec, Path(out), on_rows=on_rows)
    if as_json:
        echo_json(manifest)
    else:
        rows = sum(c["rows"] for c in manifest["catalogs"])
        click.echo(
            f"{out}: bundle {manifest['id']} with {len(manifest['catalogs'])} catalog(s), "
            f"{len(manifest['files'])} file reference(s); {rows:,} rows in {time.perf_counter() - started:.2f}s"
        )


def _open_any(path: str) -> tuple[str, Any]:
    """Open FILE as a bundle or a return bundle, whichever it is."""
    import zipfile

    from nbpack.bundle import archive
    from nbpack.bundle.build import MANIFEST, open_bundle
    from nbpack.bundle.returns import RETURN_MANIFEST, open_return

    if not Path(path).is_file():
        raise InvalidInput(f"{path}: no such file")
    with archive.open_zip(path) as zf:
        names = set(zipfile.ZipFile.namelist(zf))
    if MANIFEST in names:
        return "bundle", open_bundle(path)
    if RETURN_MANIFEST in names:
        return "return", open_return(path)
    raise InvalidInput(f"{path}: neither a bundle ({MANIFEST}) nor a return bundle ({RETURN_MANIFEST})")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a bundle or a return bundle: archive safety, schema, checksums, id, notebook, catalogs."""
    from nbpack.bundle.build import check_bundle
    from nbpack.bundle.returns import check_return

    kind, opened = _open_any(file)
    with opened:
        problems = check_bundle(opened) if kind == "bundle" else check_return(opened)
        if problems:
            raise NbpackError(
                f"{file}: invalid {kind}: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                code="invalid_bundle",
            )
        click.echo(f"{file}: valid {kind} {opened.manifest['id']}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def inspect(file: str, as_json: bool) -> None:
    """Show what a bundle or return bundle holds."""
    from nbpack.bundle.inspect import describe

    kind, opened = _open_any(file)
    with opened:
        if as_json:
            echo_json(opened.manifest)
        else:
            click.echo(describe(kind, opened))
