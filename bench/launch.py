"""Benchmark ``launch``: click-to-notebook-shown in a real JupyterHub vs the same hub opening a pulled notebook.

Starts a stock JupyterHub (tests/fixtures/hub.py: DummyAuthenticator, local spawner, nbgitpuller), an nbpack
service (gunicorn, local storage, a registry naming that hub) and headless Debian Chromium (Playwright). The
first click (login + server spawn + pull + Lab) is reported on its own. Then, per repetition (the size), a fresh
bundle is created and its landing page's launch button clicked: service redirect → nbgitpuller → shallow clone
from the service's git endpoint → Lab showing the notebook's cells (``click_to_notebook``). The baseline
(``open_pulled``) opens the same, already-pulled notebook at ``/user/<name>/lab/tree/<dir>/<nb>``. No target:
the difference is what nbpack's link adds (redirect, nbgitpuller page, clone) on top of Lab's own start-up.
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


def _open(page: Any, hub: Any, action: Callable[[], None], notebook: str) -> float:
    page.goto("about:blank")
    began = time.perf_counter()
    action()
    hub.wait_for_lab_notebook(page, notebook, cells=CELLS)
    return time.perf_counter() - began


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One hub, service and browser; ``size`` fresh bundles per size, each clicked then reopened."""

    from nbpack.client import Client
    from nbpack.links import target_dir_for
    from tests.fixtures.browser import launch_browser, start_playwright
    from tests.fixtures.hub import JupyterHubServer
    from tests.fixtures.service import ServiceProcess, service_env

    work = workdir / "launch"
    (work / "hub").mkdir(parents=True, exist_ok=True)
    (work / "chromium").mkdir(exist_ok=True)
    hub = JupyterHubServer(work / "hub")
    svc = manager = None
    rows: list[Row] = []
    try:
        say("launch: starting JupyterHub")
        hub.start()
        registry = work / "hubs.toml"
        registry.write_text(
            f'[[hubs]]\nname = "{HUB}"\nurl = "{hub.url}/"\nlaunch = "nbgitpuller"\npackages = ["pyarrow"]\n'
        )
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

        def click(i: int) -> tuple[float, str]:
            created = client.create(_request(i))
            folder = target_dir_for(created["id"], f"Launch benchmark {i}")
            landing = created["links"]["landing"]

            def go() -> None:
                page.goto(landing)
                page.locator(f'.hub[data-hub="{HUB}"] .hub-launch').click()
                if i == 0:  # the first click lands on the hub's login form
                    page.wait_for_url(lambda url: "/hub/login" in url or "/lab" in url, timeout=60_000)
                    if "/hub/login" in page.url:
                        hub.login(page, USER)

            return _open(page, hub, go, f"launch{i}.ipynb"), folder

        say("launch: first click (login, spawn, pull, Lab)")
        first, _ = click(n)
        n += 1
        for size in sizes:
            times: dict[str, list[float]] = {"click": [], "open": []}
            for _r in range(repeats):
                for _k in range(size):
                    seconds, folder = click(n)
                    times["click"].append(seconds)
                    url = f"{hub.url}/user/{USER}/lab/tree/{folder}/launch{n}.ipynb"
                    times["open"].append(_open(page, hub, lambda u=url: page.goto(u), f"launch{n}.ipynb"))
                    say(f"launch {n}: click {times['click'][-1]:.2f}s, open pulled {times['open'][-1]:.2f}s")
                    n += 1
            label = f"{size}x{repeats}"
            med = statistics.median(times["click"])
            rows.append(
                time_row(
                    "launch",
                    label,
                    "first_click",
                    [first],
                    0,
                    note="login + spawn + pull + Lab (one run, before the others)",
                )
            )
            rows.append(
                time_row(
                    "launch",
                    label,
                    "click_to_notebook",
                    times["click"],
                    0,
                    note="landing button -> service -> nbgitpuller clone -> Lab shows cells",
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
    "click-to-notebook-shown in a real JupyterHub vs opening the already-pulled notebook",
    "runs",
    small=[1],
    default=[3],
    run=run,
)
