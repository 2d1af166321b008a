"""The rig the browser benchmarks share (``launch``, ``open_size``): a stock JupyterHub, an nbpack service naming it,
headless Debian Chromium, and the timing of "Lab shows the notebook"; everything is stopped on the way out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["API_KEY", "CELLS", "USER", "Rig", "hub_rig"]

USER = "bench"
API_KEY = "bench-launch-api-key-0123456789"
# The benchmark notebooks' cell count: Lab has shown the notebook once this many cells are on the page.
CELLS = 4


@dataclass
class Rig:
    """The running parts: ``hub`` (tests/fixtures/hub.py), ``client`` of the service, one browser ``page``."""

    hub: Any
    client: Any
    page: Any
    logged_in: bool = False

    def open(self, action: Callable[[], None], notebook: str) -> float:
        """Seconds from ``action`` (a click, a goto) until Lab shows ``notebook``'s cells."""
        self.page.goto("about:blank")
        began = time.perf_counter()
        action()
        self.hub.wait_for_lab_notebook(self.page, notebook, cells=CELLS)
        return time.perf_counter() - began

    def login_once(self, timeout_ms: int) -> None:
        """After the first click: the hub asks for a login once, then the browser keeps the session cookie."""
        if self.logged_in:
            return
        self.page.wait_for_url(lambda url: "/hub/login" in url or "/lab" in url, timeout=timeout_ms)
        if "/hub/login" in self.page.url:
            self.hub.login(self.page, USER)
        self.logged_in = True


@contextlib.contextmanager
def hub_rig(
    work: Path,
    name: str,
    registry: Callable[[str], str],
    *,
    store: Path,
    cache: Path,
    client_timeout: float,
    page_timeout_ms: int,
    hub_config: str = "",
    env: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Iterator[Rig]:
    """Start hub, service (its hub registry is ``registry(hub_url)``) and browser under ``work``; stop all after."""
    from nbpack.client import Client
    from tests.fixtures.browser import launch_browser, start_playwright
    from tests.fixtures.hub import JupyterHubServer
    from tests.fixtures.service import ServiceProcess, service_env

    (work / "hub").mkdir(parents=True, exist_ok=True)
    (work / "chromium").mkdir(exist_ok=True)
    hub = JupyterHubServer(work / "hub", extra_config=hub_config)
    svc = manager = None
    try:
        say(f"{name}: starting JupyterHub")
        hub.start()
        hubs = work / "hubs.toml"
        hubs.write_text(registry(hub.url))
        service = service_env(str(store), API_KEY, hubs_file=str(hubs), cache_dir=str(cache))
        svc = ServiceProcess({**service, **(env or {})}, work / "service.log").start()
        manager = start_playwright(work / "chromium")
        browser = launch_browser(manager, work / "chromium")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(page_timeout_ms)
        try:
            yield Rig(hub, Client(svc.url, API_KEY, timeout=client_timeout), context.new_page())
        finally:
            context.close()
            browser.close()
    finally:
        if manager:
            manager.stop()
        if svc:
            svc.stop()
        hub.stop()
