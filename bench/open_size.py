"""Benchmark ``open_size``: click → notebook visible, by the size of the bundle's catalog (1 MB, 1 GiB, 10 GiB).

The issue-13 question: does a bigger bundle open slower? One stock JupyterHub (tests/fixtures/hub.py), one nbpack
service (gunicorn, local storage) naming it, headless Debian Chromium. Per size, a bundle whose one catalog weighs
``size`` bytes is pushed as a fresh handle each repetition (its notebook named per repetition: Lab restores earlier
tabs, so the tab waited for must be new), then its landing page's launch button is clicked: service redirect →
nbgitpuller → first (cold) clone of that handle's thin tree → Lab shows the notebook (``click_to_notebook``). The
baseline (``open_pulled``) opens the same pulled notebook at ``/user/<u>/lab/tree/<dir>/<nb>``; target ≤ 1.2× at
every size. ``folder`` reports the bytes of the pulled folder (target ≤ 10 MB). 10 GiB runs only when asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.download import big_bundle
from bench.harness import Row
from bench.launch import API_KEY, HUB, USER, _open
from bench.service import Runner, time_row
from bench.service import label as size_label

__all__ = ["RUNNER", "run"]

MAX_RATIO = 1.2
MAX_FOLDER = 10 * 10**6


def _folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (``du --apparent-size``; .git included: it is on the user's disk)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _bundle(workdir: Path, size: int, title: str) -> Path:
    """A bundle zip whose one catalog is ``size`` bytes, titled ``title``; the Parquet file is reused."""
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle

    parquet = workdir / f"catalog-{size}.parquet"
    if not parquet.exists():
        scratch = workdir / f"make-{size}"
        scratch.mkdir(parents=True, exist_ok=True)
        big_bundle(scratch / "unused.zip", size, scratch)  # writes scratch/big.parquet first
        (scratch / "big.parquet").rename(parquet)
        (scratch / "unused.zip").unlink()
    out = workdir / f"bundle-{size}.zip"
    # The generated notebook is named after the title: one title per repetition, one new Lab tab each.
    spec = BuildSpec(title=title, catalogs=[CatalogInput("big", parquet)])
    build_bundle(spec, out)
    return out


def run(sizes: list[int], repeats: int, workdir: Path, say: Callable[[str], None] = lambda _m: None) -> list[Row]:
    """One hub, service and browser; per size ``repeats`` fresh handles, each clicked then reopened."""
    from nbpack.client import Client
    from nbpack.hub.links import target_dir_for
    from tests.fixtures.browser import launch_browser, start_playwright
    from tests.fixtures.hub import JupyterHubServer
    from tests.fixtures.service import ServiceProcess, service_env

    work = workdir / "open_size"
    (work / "hub").mkdir(parents=True, exist_ok=True)
    (work / "chromium").mkdir(exist_ok=True)
    (work / "data").mkdir(exist_ok=True)
    hub = JupyterHubServer(work / "hub")
    svc = manager = None
    rows: list[Row] = []
    try:
        say("open_size: starting JupyterHub")
        hub.start()
        registry = work / "hubs.toml"
        registry.write_text(
            f'[[hubs]]\nname = "{HUB}"\nurl = "{hub.url}/"\nlaunch = "nbgitpuller"\npackages = ["pyarrow"]\n'
        )
        store = work / f"store-{time.time_ns()}"  # a fresh store and cache: every handle is cold
        env = service_env(str(store), API_KEY, hubs_file=str(registry), cache_dir=str(store) + "-cache")
        env["NBPACK_MAX_BUNDLE_BYTES"] = str(max(sizes) * 2 + (1 << 30))
        svc = ServiceProcess(env, work / "service.log").start()
        client = Client(svc.url, API_KEY, timeout=3600)
        manager = start_playwright(work / "chromium")
        browser = launch_browser(manager, work / "chromium")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(120_000)
        page = context.new_page()
        first = True

        def click(size: int, k: int) -> tuple[float, str, str, Path]:
            nonlocal first
            title = f"Open {size_label(size)} {k}"
            say(f"open_size {size_label(size)} #{k}: building and pushing")
            pushed = client.push(_bundle(work / "data", size, title))
            name = client.get(pushed["id"])["payload"]["notebook"]
            folder = target_dir_for(pushed["id"], title)

            def go() -> None:
                nonlocal first
                page.goto(pushed["links"]["landing"])
                page.locator(f'.hub[data-hub="{HUB}"] .hub-launch').click()
                if first:  # the first click lands on the hub's login form
                    page.wait_for_url(lambda url: "/hub/login" in url or "/lab" in url, timeout=120_000)
                    if "/hub/login" in page.url:
                        hub.login(page, USER)
                    first = False

            seconds = _open(page, hub, go, name)
            return seconds, folder, name, hub.user_home(USER) / folder

        say("open_size: first click (login, spawn, pull, Lab) on the smallest size")
        warm, *_ = click(min(sizes), 0)
        rows.append(time_row("open_size", "warmup", "first_click", [warm], 0, note="login + spawn + pull + Lab"))
        for size in sizes:
            clicks: list[float] = []
            opens: list[float] = []
            folders: list[int] = []
            for k in range(1, repeats + 1):
                seconds, folder, name, pulled = click(size, k)
                clicks.append(seconds)
                folders.append(_folder_bytes(pulled))
                url = f"{hub.url}/user/{USER}/lab/tree/{folder}/{name}"
                opens.append(_open(page, hub, lambda u=url: page.goto(u), name))
                say(f"open_size {size_label(size)} #{k}: click {clicks[-1]:.2f}s, open pulled {opens[-1]:.2f}s")
            label = size_label(size)
            med = sorted(clicks)[len(clicks) // 2]
            note = f"pulled folder {max(folders) / 1e6:.2f} MB (target <= {MAX_FOLDER / 1e6:g} MB)"
            rows.append(time_row("open_size", label, "click_to_notebook", clicks, 0, note=note))
            rows.append(
                time_row(
                    "open_size",
                    label,
                    "open_pulled",
                    opens,
                    0,
                    compared="click_to_notebook",
                    nbpack_median=med,
                    max_ratio=MAX_RATIO,
                    extra_ok=max(folders) <= MAX_FOLDER,
                    note="same hub, /lab/tree/<dir>/<nb> of the pulled notebook; met needs the folder target too",
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


RUNNER: Any = Runner(
    "open_size",
    "click-to-notebook by catalog size (thin clone) vs opening the already-pulled notebook",
    "bytes",
    small=[10**6],
    default=[10**6, 2**30],
    run=run,
)
