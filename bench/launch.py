"""Benchmark ``launch``: click-to-notebook-shown in a real JupyterHub, per launch mode, vs opening a pulled notebook.

Starts a stock JupyterHub (tests/fixtures/hub.py: DummyAuthenticator, local spawner, nbgitpuller, with named
servers and an ``apply_user_options`` hook reading the ``profile`` option), an nbpack service (gunicorn, local
storage, a registry naming that hub three times: nbgitpuller, fromurl, and nbgitpuller with a profile on a named
server) and headless Debian Chromium (Playwright). The first click (login + server spawn + pull + Lab) is reported
on its own. Then, per repetition (the size), a fresh bundle per mode is created, its landing page loaded (untimed:
the issue's "click → notebook" starts at the click, the page already shown as a user has it; the load is reported as
``landing_page``) and its launch clicked, timed until Lab shows the notebook's cells:
``click_to_notebook`` (nbgitpuller: service redirect → nbgitpuller → shallow clone → Lab, server running),
``fromurl_to_notebook`` (service redirect → Lab → jupyterlab-open-url-parameter fetches the lone notebook),
``profile_spawn_to_notebook`` (the landing page's named-server form → ``/hub/spawn/<user>/<slug>?opt-profile=``
→ the named server starts → nbgitpuller → Lab; the server is stopped between clicks, so each one spawns).
The baseline (``open_pulled``) opens the same, already-pulled notebook at ``/user/<name>/lab/tree/<dir>/<nb>``.
No target: the difference is what nbpack's link adds on top of Lab's own start-up.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Row
from bench.hub_rig import USER, hub_rig
from bench.service import Runner, time_row

__all__ = ["RUNNER", "run"]

HUB = "bench-hub"
FROMURL_HUB = "bench-fromurl"
PROFILE_HUB = "bench-profile"
SLUG = "bench"
STOP_TIMEOUT = 60.0
# The stock hook: the profile only marks the server's environment (the time, not the environment, is measured).
HUB_CONFIG = """
c.JupyterHub.allow_named_servers = True
c.Spawner.options_from_form = "simple"
def _apply_profile(spawner, user_options):
    if "profile" in user_options:
        spawner.environment = {**spawner.environment, "NBPACK_BENCH_PROFILE": str(user_options["profile"])}
c.Spawner.apply_user_options = _apply_profile
"""


def _request(i: int) -> dict[str, Any]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Launch {i}"), nbformat.v4.new_code_cell('catalogs["stars"].num_rows')]
    return {
        "title": f"Launch benchmark {i}",
        "catalogs": [{"name": "stars", "rows": [{"ra": 10.0 + k, "dec": -3.0 + k} for k in range(10)]}],
        "notebook": json.loads(nbformat.writes(nb)),
        # A distinct name per bundle: Lab restores earlier tabs, so the tab waited for must be this one.
        "notebook_name": f"launch{i}.ipynb",
    }


def _stop_named(hub: Any) -> None:
    """Stop the user's profile server (untimed) so the next profile click spawns it again."""
    hub.api("DELETE", f"/users/{USER}/servers/{SLUG}")
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if SLUG not in hub.api("GET", f"/users/{USER}").json().get("servers", {}):
            return
        time.sleep(0.3)
    raise RuntimeError(f"named server {SLUG} of {USER} still there after {STOP_TIMEOUT} s")


def _registry(hub_url: str) -> str:
    return (
        f'[[hubs]]\nname = "{HUB}"\nurl = "{hub_url}/"\nlaunch = "nbgitpuller"\npackages = ["pyarrow"]\n'
        f'[[hubs]]\nname = "{FROMURL_HUB}"\nurl = "{hub_url}/"\nlaunch = "fromurl"\npackages = ["pyarrow"]\n'
        f'[[hubs]]\nname = "{PROFILE_HUB}"\nurl = "{hub_url}/"\nlaunch = "nbgitpuller"\nnamed_servers = true\n'
        f'[[hubs.profiles]]\nslug = "{SLUG}"\npackages = ["pyarrow"]\n'
    )


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One hub, service and browser; ``size`` fresh bundles per size and mode, each clicked (nbgitpuller's reopened)."""
    from nbpack.hub.links import target_dir_for

    work = workdir / "launch"
    rows: list[Row] = []
    with hub_rig(
        work,
        "launch",
        _registry,
        store=work / "store",
        cache=work / "cache",
        client_timeout=120,
        page_timeout_ms=60_000,
        hub_config=HUB_CONFIG,
        say=say,
    ) as rig:
        hub, page = rig.hub, rig.page
        n = 0
        times: dict[str, list[float]] = {"landing": []}

        def click(i: int, hub_name: str = HUB) -> tuple[float, str]:
            created = rig.client.create(_request(i))
            folder = target_dir_for(created["id"], f"Launch benchmark {i}")
            landing = created["links"]["landing"]

            row = f'.hub[data-hub="{hub_name}"]'

            def show() -> None:
                page.goto(landing)
                if hub_name == PROFILE_HUB:  # the user types their hub name before clicking
                    page.locator(f'{row} .hub-named input[name="user"]').fill(USER)

            def go() -> None:
                rig.click(f"{row} .hub-named button" if hub_name == PROFILE_HUB else f"{row} .hub-launch")
                rig.login_once(60_000)  # the first click lands on the hub's login form

            # The landing page is loaded untimed (a user has it in front of them); its load is the landing_page row.
            seconds = rig.open(go, f"launch{i}.ipynb", hub_name, before=show)
            times["landing"].append(rig.before_seconds)
            return seconds, folder

        say("launch: first click (login, spawn, pull, Lab)")
        first, _ = click(n)
        n += 1
        for size in sizes:
            times.update(landing=[], click=[], open=[], fromurl=[], profile=[])
            for _r in range(repeats):
                for _k in range(size):
                    seconds, folder = click(n)
                    times["click"].append(seconds)
                    url = f"{hub.url}/user/{USER}/lab/tree/{folder}/launch{n}.ipynb"
                    times["open"].append(rig.open(lambda u=url: page.goto(u), f"launch{n}.ipynb", "open_pulled"))
                    n += 1
                    times["fromurl"].append(click(n, FROMURL_HUB)[0])
                    n += 1
                    times["profile"].append(click(n, PROFILE_HUB)[0])
                    page.goto("about:blank")
                    _stop_named(hub)
                    n += 1
                    say(
                        f"launch {n}: nbgitpuller {times['click'][-1]:.2f}s, open pulled {times['open'][-1]:.2f}s, "
                        f"fromurl {times['fromurl'][-1]:.2f}s, profile spawn {times['profile'][-1]:.2f}s"
                    )
            label = f"{size}x{repeats}"
            rig.profile(say)
            med = statistics.median(times["click"])
            rows.append(
                time_row("launch", label, "first_click", [first], 0, note="login + spawn + pull + Lab (one run, first)")
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "landing_page",
                    times["landing"],
                    0,
                    note="the landing page's own load (goto -> load event), before the click; not in the rows below",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "click_to_notebook",
                    times["click"],
                    0,
                    note="nbgitpuller: click on the shown landing page -> clone -> Lab shows cells (server running)",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "fromurl_to_notebook",
                    times["fromurl"],
                    0,
                    note="fromurl: click on the shown landing page -> Lab -> open-url extension fetches the notebook",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "profile_spawn_to_notebook",
                    times["profile"],
                    0,
                    note="profile: named-server form -> /hub/spawn?opt-profile= -> server starts -> clone -> Lab",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "open_pulled",
                    times["open"],
                    0,
                    compared="click_to_notebook",
                    nbpack_median=med,
                    note="same hub, /lab/tree/<dir>/<nb> of the pulled notebook",
                )
            )
    return rows


RUNNER = Runner(
    "launch",
    "click-to-notebook-shown in a real JupyterHub per launch mode (nbgitpuller, fromurl, profile spawn) vs opening"
    " the already-pulled notebook",
    "runs",
    small=[1],
    default=[3],
    run=run,
)
