"""The ``nbpack`` command. The one place where an error becomes a message line and an exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click

from nbpack import __version__
from nbpack.cli import remote
from nbpack.errors import InvalidInput, NbpackError, one_line

__all__ = ["main", "cli"]

# The service's app factory, as gunicorn names it (module:callable).
WSGI_APP = "server:create_app"


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nbpack")
def cli() -> None:
    """Notebook bundles between ESAP and Jupyter: build, run, serve, open anywhere, return."""


@cli.command()
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
        from nbpack.service.create import apply_payload

        apply_payload(spec, payload, catalog_file=payloads_file, server=server)
    if origin_service or origin_query:
        spec.origin = {k: v for k, v in (("service", origin_service), ("query", origin_query)) if v}
    if allow_http:
        spec.options = {"allow_http": True}
    from nbpack.cli import progress

    started = time.perf_counter()
    with progress.rows() as on_rows:
        manifest = build_bundle(spec, Path(out), on_rows=on_rows)
    if as_json:
        _echo_json(manifest)
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


@cli.command()
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


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def inspect(file: str, as_json: bool) -> None:
    """Show what a bundle or return bundle holds."""
    from nbpack.bundle.inspect import describe

    kind, opened = _open_any(file)
    with opened:
        if as_json:
            _echo_json(opened.manifest)
        else:
            click.echo(describe(kind, opened))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="Return bundle zip.")
@click.option("--timeout", default=600, show_default=True, help="Seconds allowed per cell.")
@click.option("--kernel", default="python3", show_default=True, help="Kernel name.")
@click.option("--upload", is_flag=True, help="Also upload the return bundle to the bundle's return endpoint.")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Set a notebook parameter as papermill does (injected-parameters cell); repeatable.",
)
def run(
    bundle: str, out: str, timeout: int, kernel: str, upload: bool, parameters: tuple[tuple[str, str], ...]
) -> None:
    """Execute a bundle's notebook in a real kernel and write the return bundle."""
    from nbpack.cli import progress
    from nbpack.local.execute import parameter_value, run_bundle

    started = time.perf_counter()
    with progress.cells() as on_cell:
        result = run_bundle(
            bundle,
            out,
            timeout=timeout,
            kernel_name=kernel,
            upload=upload,
            parameters={name: parameter_value(value) for name, value in parameters} or None,
            on_cell=on_cell,
        )
    took = time.perf_counter() - started
    _fail_unless_done(result, out)
    click.echo(f"{out}: return bundle written in {took:.2f}s (status {result.status})")
    if result.uploaded is not None:
        click.echo(f"uploaded as {result.uploaded.get('id', '?')}")


def _fail_unless_done(result: Any, shown: str | Path) -> None:
    # One line naming what went wrong and where the return bundle is (it exists: run_bundle wrote it there).
    if result.status != "completed":
        also = f"; upload failed too ({result.upload_error})" if result.upload_error else ""
        raise NbpackError(
            f"notebook failed ({result.error}){also}; return bundle with status failed written to {shown}",
            code="notebook_failed",
        )
    if result.upload_error:
        raise NbpackError(
            f"upload failed: {result.upload_error}; the return bundle is kept at {shown}", code="upload_failed"
        )


@cli.command(name="open")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--dir", "target", type=click.Path(file_okay=False), help="Folder to unpack into.")
@click.option("--no-lab", is_flag=True, help="Only unpack; do not start JupyterLab.")
def open_(bundle: str, target: str | None, no_lab: bool) -> None:
    """Unpack a bundle into a folder (kept across opens) and start JupyterLab on its notebook."""
    from nbpack.bundle import archive
    from nbpack.bundle.build import open_bundle
    from nbpack.hub.links import target_dir_for

    with open_bundle(bundle) as bf:
        folder = Path(target or target_dir_for(bf.id, bf.manifest["title"]))
        notebook = bf.manifest["payload"]["notebook"]
        if (folder / "nbpack.json").is_file():
            try:
                there = json.loads((folder / "nbpack.json").read_text("utf-8")).get("id")
            except (OSError, ValueError, AttributeError):
                there = None
            if there != bf.id:
                raise InvalidInput(f"{folder} holds another bundle ({there or 'unreadable nbpack.json'}); choose --dir")
            click.echo(f"{folder}: already unpacked; your edits there are kept")
        else:
            if folder.exists() and any(folder.iterdir()):
                raise InvalidInput(f"{folder} exists and is not this bundle's folder; choose --dir")
            archive.extract(bf.zf, folder)
            click.echo(f"{folder}: unpacked bundle {bf.id}")
    if no_lab:
        return
    from urllib.parse import quote

    from nbpack.local.jupyter import find_app

    # Beside this interpreter first: the README runs .venv/bin/nbpack without activating the venv.
    lab, app = find_app("jupyter-lab"), "LabApp"
    if lab is None and (lab := find_app("jupyter-notebook")) is not None:
        app = "JupyterNotebookApp"
    if lab is None:
        raise NbpackError(
            f"JupyterLab is not installed beside nbpack: pip install 'nbpack[local]' (the bundle is in {folder})",
            code="jupyter_missing",
        )
    # The URL Jupyter prints (and opens) is the notebook's own, not the Launcher.
    page = "/lab/tree/" if app == "LabApp" else "/notebooks/"
    os.chdir(folder)
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers run as root
    os.execv(lab, [str(lab), f"--{app}.default_url={page}{quote(notebook)}", *as_root])


@cli.command()
@click.option("--dir", "target", default="demo", show_default=True, type=click.Path(file_okay=False))
def demo(target: str) -> None:
    """Build the demo bundle from the sample catalog shipped with nbpack, and run it."""
    from nbpack.bundle.build import build_bundle
    from nbpack.local.execute import run_bundle

    folder = Path(target)
    spec = _demo_spec(folder)
    t0 = time.perf_counter()
    bundle = folder / "demo-bundle.zip"
    manifest = build_bundle(spec, bundle)
    t1 = time.perf_counter()
    result = run_bundle(bundle, folder / "demo-return.zip")
    t2 = time.perf_counter()
    click.echo(f"built {bundle} ({manifest['id']}) in {t1 - t0:.2f}s")
    _fail_unless_done(result, result.return_path)
    click.echo(f"ran it in a real kernel in {t2 - t1:.2f}s: {result.return_path} (status {result.status})")
    click.echo(f"look inside: nbpack inspect {result.return_path}")


def _demo_spec(folder: Path) -> Any:
    from nbpack.bundle.build import BuildSpec, CatalogInput

    data = resources.files("nbpack.data")
    folder.mkdir(parents=True, exist_ok=True)
    columns = json.loads(data.joinpath("sample_sources.columns.json").read_text("utf-8"))
    csv_path = folder / "sample_sources.csv"
    csv_path.write_bytes(data.joinpath("sample_sources.csv").read_bytes())
    nb_path = folder / "gaia-cone.ipynb"
    nb_path.write_bytes(data.joinpath("demo.ipynb").read_bytes())
    return BuildSpec(
        title="Gaia DR3 cone around the Pleiades (demo)",
        catalogs=[CatalogInput("sources", csv_path, columns=columns)],
        files=[
            {
                "name": "pleiades_spectrum",
                "uri": "https://example.org/data/pleiades/spec1.fits",
                "size": 2_880_000,
                "site": "SURF-DCACHE",
                "media_type": "application/fits",
            }
        ],
        notebook=nb_path,
        requirements=["pyarrow>=14"],
        origin={
            "service": "gaia-dr3-tap",
            "query": "SELECT * FROM gaiadr3.gaia_source WHERE CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 1)) = 1",
        },
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--storage", default=None, help="Folder or s3://bucket/prefix (default NBPACK_STORAGE or ./nbpack-data).")
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-demo", is_flag=True, help="Do not store the demo bundle.")
@click.option("--no-lab", is_flag=True, help="Local mode: do not start JupyterLab on this computer.")
def serve(host: str, port: int, storage: str | None, workers: int, threads: int, no_demo: bool, no_lab: bool) -> None:
    """Run the service on one machine (gunicorn); local folder storage and keys need no setup.

    In local mode it also starts JupyterLab on this computer (or attaches to NBPACK_LOCAL_JUPYTER), so a landing
    page's "Open in JupyterLab on this computer" button opens the bundle's notebook there.
    """
    import tempfile

    from nbpack.cli.local_lab import check_port_free, local_lab
    from nbpack.config import load_config
    from nbpack.service.core import Service

    overrides: dict[str, Any] = {}
    if storage:
        overrides["storage"] = storage
    local = not os.environ.get("NBPACK_SECRET_KEY")
    cfg = load_config(overrides=overrides, local_mode=local, default_public_url=f"http://{host}:{port}")
    base = cfg.public_url or f"http://{host}:{port}"
    cfg.public_url = base
    api_key = None
    if not cfg.api_key_hashes:
        if cfg.storage_url.startswith("s3://"):
            raise InvalidInput("set NBPACK_API_KEYS: the service needs at least one API key")
        from nbpack.config import hash_api_key, local_secret

        api_key = local_secret(Path(cfg.storage_url.removeprefix("file://")), ".nbpack-api-key")
        cfg.api_key_hashes = [hash_api_key(api_key)]
    check_port_free(host, port)
    svc = Service(cfg)
    svc.ping()
    lab_line = local_lab(cfg, no_lab) if local else None
    if not no_demo:
        with tempfile.TemporaryDirectory(prefix="nbpack-demo-") as tmp:
            stored = svc.handles.create(_demo_spec(Path(tmp)), base)
        click.echo(f"demo bundle {stored.id}: {stored.links['landing']}")
    if api_key:
        click.echo(f"API key (kept in {cfg.storage_url}/.nbpack-api-key): {api_key}")
    if lab_line:
        click.echo(lab_line)
    click.echo(f"nbpack service on {base} (storage {cfg.storage_url})")
    # The web app is named, never imported: nbpack stays below server/ (the walls in pyproject.toml). The
    # workers rebuild this same config from the environment; a generated API key goes as its hash, as config allows.
    env = {**os.environ, "NBPACK_STORAGE": cfg.storage_url, "NBPACK_PUBLIC_URL": base}
    if cfg.local_jupyter:
        env["NBPACK_LOCAL_JUPYTER"] = cfg.local_jupyter
    if api_key:
        env["NBPACK_API_KEYS"] = cfg.api_key_hashes[0]
    app = f"{WSGI_APP}(local_mode={local!r})"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "600",
            app,
        ],
        env,
    )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(dry_run: bool) -> None:
    """Remove expired handles, returns past retention, orphan blobs and unreferenced content (NBPACK_* config)."""
    from nbpack.config import load_config
    from nbpack.service.core import Service
    from nbpack.service.gc import collect

    report = collect(Service(load_config(serving=False)), dry_run=dry_run)
    _echo_json(report.to_json())


for _command in (remote.push, remote.pull, remote.link, remote.returns_):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command group, turning nbpack errors into one line and exit code 1."""
    try:
        cli.main(args=argv, prog_name="nbpack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("nbpack: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NbpackError as exc:
        click.echo(f"nbpack: error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except subprocess.CalledProcessError as exc:
        click.echo(f"nbpack: error: {exc.cmd[0]} failed with exit code {exc.returncode}", err=True)
        sys.exit(1)
    except OSError as exc:
        # A path the user gave (-o /proc/x.zip, a file where a folder should be, a full disk): the writers are atomic,
        # so nothing is left half-written; the user gets the path and the system's reason, not a traceback.
        click.echo(f"nbpack: error: {os_error_line(exc)}", err=True)
        sys.exit(1)


def os_error_line(exc: OSError) -> str:
    """An OSError as the CLI's one line: the path(s) it concerns and the system's reason."""
    reason = exc.strerror or one_line(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' → '.join(paths)}: {reason}" if paths else reason
