"""The commands that run a bundle on this computer: run its notebook in a kernel, open it in JupyterLab, the demo."""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click

from nbpack.errors import InvalidInput, NbpackError
from nbpack.runtime.nbpack_runtime.vocab import MANIFEST

__all__ = ["demo", "demo_spec", "open_", "run"]


@click.command()
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


@click.command(name="open")
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
        if (folder / MANIFEST).is_file():
            try:
                there = json.loads((folder / MANIFEST).read_text("utf-8")).get("id")
            except (OSError, ValueError, AttributeError):
                there = None
            if there != bf.id:
                raise InvalidInput(f"{folder} holds another bundle ({there or 'unreadable ' + MANIFEST}); choose --dir")
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


@click.command()
@click.option("--dir", "target", default="demo", show_default=True, type=click.Path(file_okay=False))
def demo(target: str) -> None:
    """Build the demo bundle from the sample catalog shipped with nbpack, and run it."""
    from nbpack.bundle.build import build_bundle
    from nbpack.local.execute import run_bundle

    folder = Path(target)
    spec = demo_spec(folder)
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


def demo_spec(folder: Path) -> Any:
    """The demo bundle's spec (the sample catalog shipped in nbpack.data), its files staged in ``folder``."""
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
