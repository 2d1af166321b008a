"""The commands of the service on this machine: serve it (gunicorn; local mode needs no setup) and collect its
garbage."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from nbpack.cli.echo import echo_json
from nbpack.cli.run_local import demo_spec
from nbpack.errors import InvalidInput

__all__ = ["gc", "serve"]

# The service's app factory, as gunicorn names it (module:callable).
WSGI_APP = "server:create_app"


@click.command()
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
    from nbpack.service.handles import CreateRequest

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
            stored = svc.handles.create(demo_spec(Path(tmp)), CreateRequest(base))
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


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(dry_run: bool) -> None:
    """Remove expired handles, returns past retention, orphan blobs and unreferenced content (NBPACK_* config)."""
    from nbpack.config import load_config
    from nbpack.service.core import Service
    from nbpack.service.gc import collect

    report = collect(Service(load_config(serving=False)), dry_run=dry_run)
    echo_json(report.to_json())
