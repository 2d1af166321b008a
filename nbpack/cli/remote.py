"""The commands that talk to a running service: push, pull, link, returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from nbpack.cli.echo import echo_json
from nbpack.errors import InvalidInput, NbpackError

__all__ = ["push", "pull", "link", "returns_"]


def _server_and_key(server: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The service and API key a command talks to: as given (or NBPACK_SERVER / NBPACK_API_KEY), else the one
    `nbpack serve` runs here by default. A service on this computer without a key given gets the key `nbpack serve`
    keeps beside its storage (never sent to another host)."""
    from urllib.parse import urlsplit

    server = server or "http://127.0.0.1:8080"
    if not api_key and urlsplit(server).hostname in ("127.0.0.1", "localhost", "::1"):
        kept = Path(os.environ.get("NBPACK_STORAGE") or "nbpack-data") / ".nbpack-api-key"
        try:
            api_key = kept.read_text("utf-8").strip() or None
        except OSError:
            api_key = None
    return server, api_key


_SERVER_HELP = "Service URL (or NBPACK_SERVER; default: `nbpack serve` here, http://127.0.0.1:8080)."
_KEY_HELP = "API key (or NBPACK_API_KEY; default: the key `nbpack serve` keeps in ./nbpack-data)."


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--server", envvar="NBPACK_SERVER", help=_SERVER_HELP)
@click.option("--api-key", envvar="NBPACK_API_KEY", help=_KEY_HELP)
@click.option("--expires-in", type=int, default=None, help="Seconds the links and return token live.")
@click.option("--callback-url", default=None, help="Webhook for arriving returns.")
@click.option("--owner", default=None, help="The portal user the new handle is listed under.")
@click.option("--json", "as_json", is_flag=True, help="Print the service's whole answer (id and links) as JSON.")
@click.option(
    "--idempotency-key",
    default=None,
    help="Repeat an earlier push whose answer was lost: the service answers the handle it made then (24 h).",
)
def push(
    bundle: str,
    server: str | None,
    api_key: str | None,
    expires_in: int | None,
    callback_url: str | None,
    owner: str | None,
    as_json: bool,
    idempotency_key: str | None,
) -> None:
    """Upload a built bundle to a service as a new handle; prints its landing page link (--json: every link)."""
    from nbpack.cli import progress
    from nbpack.client import Client, CreateInterrupted

    url, key = _server_and_key(server, api_key)
    client = Client(url, key)
    options: dict[str, Any] = {"expires_in": expires_in, "callback_url": callback_url, "owner": owner}
    try:
        with progress.transfer(f"push {Path(bundle).name}") as tell:
            answer = client.push(bundle, progress=tell, idempotency_key=idempotency_key, **options)
    except CreateInterrupted as stop:
        if not stop.sent:
            raise click.ClickException("interrupted before the upload finished; nothing was stored") from None
        # The whole bundle went up: the service may have stored it. The same push with the same key answers the
        # handle it made (or makes the one it was making), never a second one.
        click.echo(
            "nbpack: interrupted after the upload; asking the service for its id (Ctrl-C again to quit)", err=True
        )
        try:
            answer = client.push(bundle, idempotency_key=stop.key, **options)
        except KeyboardInterrupt:
            raise click.ClickException(
                f"interrupted; the bundle may be stored: `nbpack push {bundle} --idempotency-key {stop.key}`"
                " tells its id"
            ) from None
    if as_json:
        echo_json(answer)
        return
    click.echo(answer["links"]["landing"])
    click.echo(f"stored as {answer['id']}; every link: nbpack push --json, or nbpack link {answer['id']} --hub NAME")


@click.command(name="returns")
@click.argument("bundle_id")
@click.option("--server", envvar="NBPACK_SERVER", help=_SERVER_HELP)
@click.option("--api-key", envvar="NBPACK_API_KEY", help=_KEY_HELP)
@click.option("--download", "folder", type=click.Path(file_okay=False), help="Also save each return zip here.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def returns_(bundle_id: str, server: str | None, api_key: str | None, folder: str | None, as_json: bool) -> None:
    """List the return bundles a stored bundle (h-…) has received, oldest first."""
    from nbpack.client import Client

    if bundle_id.startswith("b-"):
        raise InvalidInput(
            f"{bundle_id} is a content id; give the bundle's id (h-…), as push and the landing page show it"
        )
    client = Client(*_server_and_key(server, api_key))
    items = client.returns(bundle_id)
    saved = (
        {r["id"]: client.download_return(bundle_id, r["id"], Path(folder) / f"{r['id']}.zip") for r in items}
        if (folder)
        else {}
    )
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo(f"{bundle_id}: no returns yet (the notebook's last cell sends one)")
    for r in items:
        values = ", ".join(r["values"]) or "none"
        error = f": {r['error']}" if r.get("error") else ""
        where = f" → {saved[r['id']]}" if r["id"] in saved else ""
        click.echo(
            f"{r['id']}  {r['status']}{error}  ended {r['ended']}  values: {values}  outputs: {r['outputs']}{where}"
        )


@click.command()
@click.argument("url")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="Where to save the zip.")
def pull(url: str, out: str | None) -> None:
    """Download a bundle from its signed link (landing or download URL)."""
    from nbpack.cli import progress
    from nbpack.client import pull as pull_bundle

    dest = Path(out or (url.split("?")[0].rstrip("/").removesuffix("/download").rsplit("/", 1)[-1] + ".zip"))
    with progress.transfer(f"pull {dest.name}") as tell:
        pull_bundle(url, dest, progress=tell)
    click.echo(f"{dest}: downloaded")


@click.command()
@click.argument("bundle_or_id")
@click.option("--hub", required=True, help="Hub name from the service's registry.")
@click.option("--server", envvar="NBPACK_SERVER", help=_SERVER_HELP)
@click.option("--api-key", envvar="NBPACK_API_KEY", help=_KEY_HELP)
def link(bundle_or_id: str, hub: str, server: str | None, api_key: str | None) -> None:
    """Print the link that opens a stored bundle in a hub (nbgitpuller or BinderHub)."""
    import urllib.error
    import urllib.request

    from nbpack.client import Client

    bid = bundle_or_id
    if Path(bundle_or_id).is_file():
        from nbpack.bundle.build import open_bundle

        # A stored bundle names its handle in its return endpoint (.../bundles/<handle id>/returns).
        with open_bundle(bundle_or_id) as bf:
            endpoint = (bf.manifest.get("returns") or {}).get("endpoint", "")
        bid = endpoint.rstrip("/").removesuffix("/returns").rsplit("/", 1)[-1]
        if not bid.startswith("h-"):
            raise InvalidInput(f"{bundle_or_id} was not stored by a service: give the id that push printed")
    elif bid.startswith("b-"):
        raise InvalidInput(f"{bid} is a content id; give the bundle's id (h-…), as push and the landing page show it")
    links = Client(*_server_and_key(server, api_key)).links(bid)
    launch = links.get("launch", {}).get(hub)
    if not launch:
        known = ", ".join(links.get("launch", {}))
        raise InvalidInput(
            f"the service has no hub named {hub!r}; "
            + (f"it has: {known}" if known else "it has no hub registry (NBPACK_HUBS_FILE, e.g. examples/hubs.toml)")
        )

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(launch, timeout=30)
        raise NbpackError("the service did not answer with a launch redirect", code="upstream_error")
    except urllib.error.HTTPError as err:
        if err.code not in (301, 302, 303, 307):
            raise NbpackError(f"the service refused the launch link (HTTP {err.code})", code="upstream_error") from None
        click.echo(err.headers["Location"])
