"""Benchmark ``launch``: click-to-notebook-shown in a real JupyterHub, per launch mode, vs opening a pulled notebook.

Starts a stock JupyterHub (tests/fixtures/hub.py: DummyAuthenticator, local spawner, nbgitpuller, with named
servers and an ``apply_user_options`` hook reading the ``profile`` option), an nbpack service (gunicorn, local
storage, a registry naming that hub three times: nbgitpuller, fromurl, and nbgitpuller with a profile on a named
server) and headless Debian Chromium (Playwright). The first click (login + server spawn + pull + Lab) is reported
on its own. Then, per repetition (the size), a fresh bundle per mode is created and its landing page's launch
clicked, until Lab shows the notebook's cells:
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
from bench.service import Runner, time_row

__all__ = ["RUNNER", "run"]

USER = "bench"
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
API_KEY = "bench-launch-api-key-0123456789"
CELLS = 4


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


# The last run's step profile per mode: (start s, end s, status, kind, path) of each page, event stream and fetch
# the browser made, from the click on (Chromium's own request timing), then the moment Lab showed the cells.
STEPS: dict[str, list[tuple[float, float, int, str, str]]] = {}
_KINDS = ("document", "eventsource", "fetch", "xhr")


def _shown(url: str) -> str:
    """A URL's path with token-like segments elided and no query (the bench prints it)."""
    path = url.split("?", 1)[0].split("://", 1)[-1]
    return "/".join("…" if len(seg) > 32 else seg for seg in path.split("/"))


def _open(page: Any, hub: Any, action: Callable[[], None], notebook: str, mode: str = "") -> float:
    page.goto("about:blank")
    steps: list[tuple[float, float, int, str, str]] = []
    began_wall = time.time()

    def finished(request: Any) -> None:
        if request.resource_type not in _KINDS:
            return
        timing = request.timing
        start = timing["startTime"] / 1000 - began_wall
        end = start + max(timing.get("responseEnd", 0), 0) / 1000
        response = request.response() if request.resource_type == "document" else None
        steps.append((start, end, response.status if response else 0, request.resource_type, _shown(request.url)))

    page.on("requestfinished", finished)
    began = time.perf_counter()
    try:
        action()
        hub.wait_for_lab_notebook(page, notebook, cells=CELLS)
        took = time.perf_counter() - began
    finally:
        page.remove_listener("requestfinished", finished)
    if mode:
        STEPS[mode] = [*sorted(steps), (took, took, 0, "shown", "Lab shows the notebook's cells")]
    return took


def _profile(say: Callable[[str], None]) -> None:
    """Say each mode's step profile: documents and event streams, and the first/last of the Lab's own fetches."""
    for mode, steps in STEPS.items():
        say(f"launch steps, {mode} (s from the click: start - end  status kind path):")
        fetches = [s for s in steps if s[3] in ("fetch", "xhr")]
        for start, end, status, kind, path in steps:
            if kind in ("fetch", "xhr") and (start, end, status, kind, path) not in (fetches[0], fetches[-1]):
                continue
            say(f"  {start:7.3f} - {end:7.3f}  {status or '':3}  {kind:11s} {path}")
        say(f"  ({len(fetches)} fetch/xhr requests in all)")


def _stop_named(hub: Any) -> None:
    """Stop the user's profile server (untimed) so the next profile click spawns it again."""
    hub.api("DELETE", f"/users/{USER}/servers/{SLUG}")
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if SLUG not in hub.api("GET", f"/users/{USER}").json().get("servers", {}):
            return
        time.sleep(0.3)
    raise RuntimeError(f"named server {SLUG} of {USER} still there after {STOP_TIMEOUT} s")


def _registry(path: Path, hub_url: str) -> Path:
    path.write_text(
        f'[[hubs]]\nname = "{HUB}"\nurl = "{hub_url}/"\nlaunch = "nbgitpuller"\npackages = ["pyarrow"]\n'
        f'[[hubs]]\nname = "{FROMURL_HUB}"\nurl = "{hub_url}/"\nlaunch = "fromurl"\npackages = ["pyarrow"]\n'
        f'[[hubs]]\nname = "{PROFILE_HUB}"\nurl = "{hub_url}/"\nlaunch = "nbgitpuller"\nnamed_servers = true\n'
        f'[[hubs.profiles]]\nslug = "{SLUG}"\npackages = ["pyarrow"]\n'
    )
    return path


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One hub, service and browser; ``size`` fresh bundles per size and mode, each clicked (nbgitpuller's reopened)."""

    from nbpack.client import Client
    from nbpack.hub.links import target_dir_for
    from tests.fixtures.browser import launch_browser, start_playwright
    from tests.fixtures.hub import JupyterHubServer
    from tests.fixtures.service import ServiceProcess, service_env

    work = workdir / "launch"
    (work / "hub").mkdir(parents=True, exist_ok=True)
    (work / "chromium").mkdir(exist_ok=True)
    hub = JupyterHubServer(work / "hub", extra_config=HUB_CONFIG)
    svc = manager = None
    rows: list[Row] = []
    try:
        say("launch: starting JupyterHub")
        hub.start()
        registry = _registry(work / "hubs.toml", hub.url)
        svc = ServiceProcess(
            service_env(str(work / "store"), API_KEY, hubs_file=str(registry), cache_dir=str(work / "cache")),
            work / "service.log",
        ).start()
        client = Client(svc.url, API_KEY, timeout=120)
        manager = start_playwright(work / "chromium")
        browser = launch_browser(manager, work / "chromium")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(60_000)
        page = context.new_page()
        n = 0

        def click(i: int, hub_name: str = HUB) -> tuple[float, str]:
            created = client.create(_request(i))
            folder = target_dir_for(created["id"], f"Launch benchmark {i}")
            landing = created["links"]["landing"]

            def go() -> None:
                page.goto(landing)
                row = page.locator(f'.hub[data-hub="{hub_name}"]')
                if hub_name == PROFILE_HUB:
                    row.locator('.hub-named input[name="user"]').fill(USER)
                    row.locator(".hub-named button").click()
                else:
                    row.locator(".hub-launch").click()
                if i == 0:  # the first click lands on the hub's login form
                    page.wait_for_url(lambda url: "/hub/login" in url or "/lab" in url, timeout=60_000)
                    if "/hub/login" in page.url:
                        hub.login(page, USER)

            return _open(page, hub, go, f"launch{i}.ipynb", hub_name), folder

        say("launch: first click (login, spawn, pull, Lab)")
        first, _ = click(n)
        n += 1
        for size in sizes:
            times: dict[str, list[float]] = {"click": [], "open": [], "fromurl": [], "profile": []}
            for _r in range(repeats):
                for _k in range(size):
                    seconds, folder = click(n)
                    times["click"].append(seconds)
                    url = f"{hub.url}/user/{USER}/lab/tree/{folder}/launch{n}.ipynb"
                    times["open"].append(
                        _open(page, hub, lambda u=url: page.goto(u), f"launch{n}.ipynb", "open_pulled")
                    )
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
            _profile(say)
            med = statistics.median(times["click"])
            rows.append(
                time_row("launch", label, "first_click", [first], 0, note="login + spawn + pull + Lab (one run, first)")
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "click_to_notebook",
                    times["click"],
                    0,
                    note="nbgitpuller: landing button -> service -> clone -> Lab shows cells (server running)",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "fromurl_to_notebook",
                    times["fromurl"],
                    0,
                    note="fromurl: landing button -> service -> Lab -> open-url extension fetches the lone notebook",
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
        context.close()
        browser.close()
    finally:
        if manager:
            manager.stop()
        if svc:
            svc.stop()
        hub.stop()
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
