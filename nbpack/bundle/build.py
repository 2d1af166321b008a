"""The bundle: build one from inputs (staging folder → reproducible zip), and read one back.

This module lays a bundle out and reads one back; the schema in ``schemas/`` says what a manifest may hold, this
code says how the files around it are laid out. The zip itself is written by ``zipwrite``, the software files
(requirements.txt, environment.yml, README) by ``software``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from nbpack import __version__, ids
from nbpack.bundle import archive, catalog, schema
from nbpack.bundle import crate as rocrate
from nbpack.bundle.lone import runtime_pin_of_files
from nbpack.bundle.manifest import ManifestZip, contents_problems, open_manifest_zip
from nbpack.bundle.notebook import (
    BOOTSTRAP_TAG,
    RESULTS_TAG,
    notebook_bytes,
    prepare_notebook,
    read_notebook,
    starter_notebook,
    tagged_cells,
)
from nbpack.bundle.records import RecordHasher
from nbpack.bundle.refs import normalise_refs
from nbpack.bundle.software import BUNDLE_PYTHON, environment_yml, readme_text, requirements_text
from nbpack.bundle.zipwrite import atomic_zip, contents_of, stat_key, write_entries, write_zip
from nbpack.clock import iso, now
from nbpack.errors import InvalidInput, NbpackError
from nbpack.runtime.nbpack_runtime.vocab import CRATE, MANIFEST

__all__ = [
    "MANIFEST",
    "RUNTIME_PACKAGE",
    "runtime_files",
    "CatalogInput",
    "BuildSpec",
    "build_bundle",
    "BundleFile",
    "open_bundle",
    "bundle_id_for",
    "check_bundle",
    "with_returns",
    "write_zip",
]

# The runtime is a package at the bundle root, imported by the bootstrap cell as ``import nbpack_runtime``.
RUNTIME_PACKAGE = "nbpack_runtime"
_ORIGIN_SECRET = re.compile(r"(?i)(token|secret|password|passwd|credential|api[_-]?key|authorization)")


@dataclass
class CatalogInput:
    """One catalog to put in a bundle: any source ``catalog.write_catalog`` accepts."""

    name: str
    source: Any
    fmt: str | None = None
    columns: dict[str, dict[str, str]] | None = None
    description: str | None = None
    origin: dict[str, str] | None = None
    encoding: str | None = None  # a CSV/TSV file's text encoding (None: UTF-8)


@dataclass
class BuildSpec:
    """Everything a bundle is built from."""

    title: str
    catalogs: list[CatalogInput] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    notebook: bytes | str | Path | None = None
    notebook_name: str | None = None
    requirements: list[str] = field(default_factory=list)
    conda: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] | None = None
    payload_name: str | None = None
    payload_source: dict[str, str] | None = None
    payload_hub: dict[str, Any] | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    license: str | None = None
    # What each basket item became (catalog, row, files) or why it was skipped: the create answer's, not the bundle's.
    basket_report: list[dict[str, Any]] | None = None


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            when = datetime.fromtimestamp(int(epoch), UTC)
        except ValueError:
            raise InvalidInput(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    else:
        when = now()
    return iso(when.replace(microsecond=0))


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def bundle_id_for(manifest: dict[str, Any]) -> str:
    """The content-derived id: same notebook, catalogs, references and payload → same id."""
    core = {k: v for k, v in manifest.items() if k not in ("id", "created", "returns", "contents")}
    h = hashlib.sha256(_canonical(core))
    for entry in manifest.get("contents", []):
        if entry["path"] not in (MANIFEST, CRATE):
            h.update(f"\n{entry['path']}\0{entry['sha256']}".encode())
    return ids.make_id(ids.CONTENT, h.hexdigest())


def _safe_notebook_name(name: str | None, title: str) -> str:
    base = Path(name).name if name else re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "analysis"
    base = re.sub(r"[^A-Za-z0-9._ -]+", "-", base).strip(". ")
    if not base.endswith(".ipynb"):
        base += ".ipynb"
    if base in (MANIFEST, CRATE, "README.md") or len(base) > 120:
        base = "analysis.ipynb"
    return base


def _check_origin(origin: dict[str, Any]) -> dict[str, str]:
    clean = {}
    for key, value in (origin or {}).items():
        if _ORIGIN_SECRET.search(str(key)):
            raise InvalidInput(f"origin field {key!r} looks like a credential; bundles never carry secrets")
        if value is not None:
            clean[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return clean


def runtime_files() -> list[tuple[str, bytes]]:
    """The runtime package as (bundle path, bytes): every module, sorted, nothing compiled."""
    folder = resources.files("nbpack.runtime").joinpath(RUNTIME_PACKAGE)
    return [
        (f"{RUNTIME_PACKAGE}/{f.name}", f.read_bytes())
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".py") and f.is_file()
    ]


def _load_template(spec: BuildSpec) -> Any:
    src = spec.notebook
    if isinstance(src, Path) or (isinstance(src, str) and not src.lstrip().startswith("{")):
        path = Path(src)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInput(f"notebook {path}: no such file") from None
        except OSError as exc:
            raise InvalidInput(f"notebook {path}: cannot read ({exc.strerror})") from None
        return read_notebook(data, f"notebook {path.name}"), spec.notebook_name or path.name
    if src is None:
        raise InvalidInput("no notebook given")
    return read_notebook(src, "notebook"), spec.notebook_name


def build_bundle(
    spec: BuildSpec,
    out: str | Path | IO[bytes],
    *,
    progress: Any = None,
    returns: dict[str, Any] | None = None,
    on_rows: Callable[[str, int], None] | None = None,
    record_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build a bundle from ``spec`` and write the zip to ``out`` (atomically for a path); returns the manifest.

    ``returns`` (endpoint, token, expires) is what a service adds when it stores the bundle: written in the same
    pass, so a service-built bundle is zipped once. Like ``with_returns`` it never changes the id. ``record_keys``
    receives the zip's record keys by member name as they are written (see :func:`zipwrite.write_zip`).
    """
    if not spec.title or not spec.title.strip():
        raise InvalidInput("a bundle needs a title")
    files = normalise_refs(spec.files)
    license = rocrate.license_for(spec.license)
    names = [c.name for c in spec.catalogs]
    if len(set(names)) != len(names):
        raise InvalidInput(f"catalog names must be unique, got {names}")
    template = _load_template(spec) if spec.notebook is not None else None
    say = progress or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="nbpack-build-") as tmp:
        stage = Path(tmp)
        (stage / "catalogs").mkdir()
        cats = []
        for cat in spec.catalogs:
            say(f"catalog {cat.name}")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", cat.name):
                raise InvalidInput(f"catalog name {cat.name!r} must start with a letter and use letters, digits, _.-")
            rel = f"catalogs/{cat.name}.parquet"
            entry = catalog.write_catalog(
                cat.source,
                stage / rel,
                name=cat.name,
                fmt=cat.fmt,
                columns=cat.columns,
                encoding=cat.encoding,
                on_rows=functools.partial(on_rows, cat.name) if on_rows else None,
            )
            entry = {"name": cat.name, "path": rel, **{k: v for k, v in entry.items() if k != "name"}}
            entry["blocks"] = {**entry["blocks"], "path": rel + catalog.BLOCKS_SUFFIX}
            if cat.description:
                entry["description"] = cat.description
            if cat.origin:
                entry["origin"] = _check_origin(cat.origin)
            cats.append(entry)
        requirements = list(dict.fromkeys(r.strip() for r in spec.requirements if r and r.strip()))
        if template is not None:
            nb, nb_name = template
            generated = False
        else:
            nb, nb_name = starter_notebook(spec.title, cats, files, requirements), None
            generated = True
        nb_name = _safe_notebook_name(nb_name, spec.title)
        runtime = runtime_files()
        (stage / nb_name).write_bytes(notebook_bytes(prepare_notebook(nb, runtime_pin_of_files(runtime))))
        (stage / RUNTIME_PACKAGE).mkdir()
        for rel, data in runtime:
            (stage / rel).write_bytes(data)
        all_reqs = (
            requirements
            if any(r.split("[")[0].lower().startswith("pyarrow") for r in requirements)
            else ["pyarrow>=14", *requirements]
        )
        (stage / "requirements.txt").write_text(requirements_text(all_reqs), "utf-8")
        if spec.conda:
            (stage / "environment.yml").write_text(environment_yml(spec.title, spec.conda, all_reqs), "utf-8")
        else:
            # pip only: repo2docker takes the Python version from runtime.txt (a payload's own one replaces it).
            (stage / "runtime.txt").write_text(f"python-{BUNDLE_PYTHON}\n", "utf-8")
        for rel, data in sorted(spec.extra_files.items()):
            archive.check_name(rel)
            if (
                rel in (MANIFEST, CRATE, f"{RUNTIME_PACKAGE}.py", nb_name)
                or rel.startswith("catalogs/")
                or rel.split("/")[0] == RUNTIME_PACKAGE
            ):
                raise InvalidInput(f"extra file {rel!r} would replace a file nbpack writes")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
        payload: dict[str, Any] = {"notebook": nb_name, "generated": generated, "requirements": requirements}
        if spec.conda:
            payload["conda"] = list(spec.conda)
        if spec.payload_name:
            payload["name"] = spec.payload_name
        if spec.payload_source:
            payload["source"] = dict(spec.payload_source)
        if spec.payload_hub:
            payload["hub"] = dict(spec.payload_hub)
        manifest: dict[str, Any] = {
            "format": "nbpack-bundle",
            "format_version": schema.BUNDLE_FORMAT_VERSION,
            "id": "",
            "title": spec.title.strip(),
            "created": _created(),
            "catalogs": cats,
            "files": files,
            "payload": payload,
            "cells": {"bootstrap": BOOTSTRAP_TAG, "results": RESULTS_TAG},
            "runtime": {"module": RUNTIME_PACKAGE, "version": __version__},
            "contents": [],
        }
        if spec.origin:
            manifest["origin"] = _check_origin(spec.origin)
        manifest["license"] = license
        if spec.options:
            manifest["options"] = dict(spec.options)
        if spec.results:
            manifest["results"] = dict(spec.results)
        if spec.skipped:
            manifest["skipped"] = list(spec.skipped)
        digests = {stat_key(stage, c["path"]): c["sha256"] for c in cats}
        manifest["contents"] = contents_of(stage, digests)
        manifest["id"] = bundle_id_for(manifest)
        (stage / "README.md").write_text(readme_text(manifest), "utf-8")
        manifest["contents"] = contents_of(stage, digests)
        manifest["id"] = bundle_id_for(manifest)
        (stage / CRATE).write_text(json.dumps(rocrate.bundle_crate(manifest), indent=1, sort_keys=True) + "\n")
        manifest["contents"] = contents_of(stage, digests)
        if returns is not None:
            manifest["returns"] = dict(returns)
        schema.validate(manifest, "bundle")
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
        say("zip")
        keys = write_zip(stage, out, {e["path"]: e["sha256"] for e in manifest["contents"]})
    if record_keys is not None:
        record_keys.update(keys)
    return manifest


# The opened-zip type is shared with return bundles; the name says which kind a function wants.
BundleFile = ManifestZip


def open_bundle(source: str | Path | IO[bytes], limits: archive.Limits = archive.DEFAULT_LIMITS) -> BundleFile:
    """Open a bundle zip after the archive safety checks; its manifest is schema-valid."""
    return open_manifest_zip(source, limits, MANIFEST, "bundle", "not an nbpack bundle")


def check_bundle(bf: BundleFile, *, deep: bool = True) -> list[str]:
    """Every problem found in an opened bundle (empty when it is sound).

    Checks the contents list against the archive (sizes, sha256), the id against the content,
    the notebook and its nbpack cells, and (deep) that each catalog reads with its row count.
    """
    m = bf.manifest
    problems = contents_problems(bf, {MANIFEST}, hash_members=deep)
    listed = {e["path"]: e for e in m["contents"]}
    present = set(bf.zf.namelist())
    if bundle_id_for(m) != m["id"]:
        problems.append(f"id {m['id']} does not match the content ({bundle_id_for(m)})")
    for cat in m["catalogs"]:
        entry = listed.get(cat["path"])
        if entry is None:
            problems.append(f"catalog {cat['name']}: {cat['path']} is not in the manifest contents")
        elif entry["sha256"] != cat["sha256"]:
            problems.append(f"catalog {cat['name']}: sha256 differs from its contents entry")
    nb_path = m["payload"]["notebook"]
    if nb_path not in present:
        problems.append(f"notebook {nb_path} is missing")
    else:
        try:
            nb = read_notebook(bf.read(nb_path), f"notebook {nb_path}")
            if not tagged_cells(nb, m["cells"]["bootstrap"]):
                problems.append(f"notebook {nb_path} has no bootstrap cell")
            if not tagged_cells(nb, m["cells"]["results"]):
                problems.append(f"notebook {nb_path} has no results cell")
        except NbpackError as exc:
            problems.append(str(exc))
    if deep and not problems:
        for cat in m["catalogs"]:
            try:
                # Catalogs are stored (not deflated), so the footer read seeks cheaply inside the zip.
                with bf.zf.open(cat["path"]) as f:
                    rows = pq.ParquetFile(f).metadata.num_rows
            except (OSError, ValueError, pa.ArrowException) as exc:
                problems.append(f"catalog {cat['name']}: not readable as Parquet ({exc})")
                continue
            if rows != cat["rows"]:
                problems.append(f"catalog {cat['name']}: {rows} rows, the manifest says {cat['rows']}")
    return problems


def with_returns(
    source: str | Path | IO[bytes],
    out: str | Path | IO[bytes],
    returns: dict[str, str],
    *,
    record_keys: dict[str, str] | None = None,
    limits: archive.Limits = archive.DEFAULT_LIMITS,
) -> dict:
    """Copy a bundle with ``returns`` (endpoint, token, expires) set in its manifest; the id is unchanged.

    ``record_keys`` receives the copy's record keys by name (see :func:`zipwrite.write_zip`), computed as it is
    written: the caller has checked the source deep, so its manifest's digests are its members'."""
    with open_bundle(source, limits) as bf:
        manifest = dict(bf.manifest)
        manifest["returns"] = dict(returns)
        schema.validate(manifest, "bundle")
        body = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")

        def fill(zf: zipfile.ZipFile, records: RecordHasher | None) -> None:
            def entries() -> Iterable[tuple[str, int, IO[bytes]]]:
                yield MANIFEST, len(body), io.BytesIO(body)
                for info in archive.safe_members(bf.zf):
                    if info.filename != MANIFEST:
                        with bf.zf.open(info) as src:
                            yield info.filename, info.file_size, src

            write_entries(zf, entries(), records, {e["path"]: e["sha256"] for e in manifest["contents"]})

        keys = atomic_zip(out, fill)
    if record_keys is not None:
        record_keys.update(keys)
    return manifest
