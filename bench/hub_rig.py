"""The rig the browser benchmarks share (``launch``, ``open_size``): a stock JupyterHub, an nbpack service naming it,
headless Debian Chromium, and the timing of "Lab shows the notebook"; everything is stopped on the way out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["API_KEY", "CELLS", "USER", "Rig", "hub_rig"]

USER = "bench"
API_KEY = "bench-launch-api-key-0123456789"
# The benchmark notebooks' cell count: Lab has shown the notebook once this many cells are on the page.
CELLS = 4
_KINDS = ("document", "eventsource", "fetch", "xhr")


def _shown(url: str) -> str:
    """A URL's path with token-like segments elided and no query (the bench prints it)."""
    path = url.split("?", 1)[0].split("://", 1)[-1]
    return "/".join("…" if len(seg) > 32 else seg for seg in path.split("/"))


@dataclass
class Rig:
    """The running parts: ``hub`` (tests/fixtures/hub.py), ``client`` of the service, one browser ``page``."""

    hub: Any
    client: Any
    page: Any
    logged_in: bool = False
    # Seconds the last ``open``'s ``before`` took (the landing page's load): reported as its own row, not hidden.
    before_seconds: float = 0.0

    # The last run's step profile per mode: (start s, end s, status, kind, path) of each page, event stream and
    # fetch the browser made, in seconds from the click (Chromium's own request timing; the landing page's load is
    # negative), then Lab showing the cells.
    steps: dict[str, list[tuple[float, float, int, str, str]]] = field(default_factory=dict)

    def open(
        self, action: Callable[[], None], notebook: str, mode: str = "", before: Callable[[], None] | None = None
    ) -> float:
        """Seconds from ``action`` (a click, a goto) until Lab shows ``notebook``'s cells; with ``mode``, its steps
        are kept in ``steps[mode]``. ``before`` (loading the landing page) runs untimed first: the issue's "click →
        notebook" starts at the click, with the page already shown as a user has it; its own seconds are kept in
        ``before_seconds`` and its requests stay in the profile (negative times: before the click)."""
        self.page.goto("about:blank")
        self._fresh_lab()
        steps: list[tuple[float, float, int, str, str]] = []

        def finished(request: Any) -> None:
            if request.resource_type not in _KINDS:
                return
            timing = request.timing
            start = timing["startTime"] / 1000  # wall clock; made relative to the click below
            end = start + max(timing.get("responseEnd", 0), 0) / 1000
            response = request.response() if request.resource_type == "document" else None
            # A write (the open-url extension's folder and upload) is named by its method: it is a step of the click.
            shown = _shown(request.url) if request.method == "GET" else f"{request.method} {_shown(request.url)}"
            steps.append((start, end, response.status if response else 0, request.resource_type, shown))

        self.page.on("requestfinished", finished)
        self.before_seconds = 0.0
        try:
            if before is not None:
                shown = time.perf_counter()
                before()
                self.before_seconds = time.perf_counter() - shown
            began_wall = time.time()
            began = time.perf_counter()
            action()
            self.hub.wait_for_lab_notebook(self.page, notebook, cells=CELLS)
            took = time.perf_counter() - began
        finally:
            self.page.remove_listener("requestfinished", finished)
        if mode:
            relative = [(a - began_wall, b - began_wall, st, kind, path) for a, b, st, kind, path in steps]
            self.steps[mode] = [*sorted(relative), (took, took, 0, "shown", "Lab shows the notebook's cells")]
        return took

    def _fresh_lab(self) -> None:
        """Untimed, before each open: no kernel left running and Lab's workspace empty on the user's server, so
        every timed open starts from one state. Otherwise Lab restores every tab an earlier open left (82 requests
        by the last 1 GiB click, 58 by the last 1 MB one) and each earlier notebook's kernel keeps running, while the
        open_pulled baseline reopened a notebook whose kernel was already up."""
        import requests

        base = f"{self.hub.url}/user/{USER}"
        headers = {"Authorization": f"token {self.hub.token}"}
        got = requests.get(f"{base}/api/sessions", headers=headers, timeout=10, allow_redirects=False)
        if got.status_code != 200:
            return  # the server is not started yet (the first click spawns it): nothing to clear
        for session in got.json():
            requests.delete(f"{base}/api/sessions/{session['id']}", headers=headers, timeout=30).raise_for_status()
        gone = requests.delete(f"{base}/lab/api/workspaces/default", headers=headers, timeout=10)
        if gone.status_code not in (204, 404):  # 404: no workspace saved yet
            gone.raise_for_status()

    def click(self, selector: str) -> None:
        """Click ``selector`` on the shown page as a user does: the element's own click(), from a timer so the
        navigation it starts cannot cut the evaluate short. Playwright's ``locator.click()`` first checks the element
        is visible, stable over two animation frames and the hit target: its first hub request came 0.12-0.24 s
        after the call (load 5-10), time no user's click spends."""
        found = self.page.evaluate(
            "s => { const el = document.querySelector(s); if (el) setTimeout(() => el.click(), 0); return !!el; }",
            selector,
        )
        if not found:
            raise RuntimeError(f"nothing to click at {selector!r} on {self.page.url}")

    def profile(self, say: Callable[[str], None]) -> None:
        """Say each mode's step profile: documents and event streams, the first and last of Lab's own fetches, and
        every write (method named) and fetch of a lone notebook (``/nb/``) between them."""
        for mode, steps in self.steps.items():
            say(f"launch steps, {mode} (s from the click or goto: start - end  status kind path):")
            fetches = [s for s in steps if s[3] in ("fetch", "xhr")]
            for step in steps:
                # Lab's own reads are summed up by the first and last; a write or a read of nbpack's lone notebook
                # (the fromurl click's fetch) is a step of its own.
                ours = "/nb/" in step[4] or " " in step[4]
                if step[3] in ("fetch", "xhr") and step not in (fetches[0], fetches[-1]) and not ours:
                    continue
                start, end, status, kind, path = step
                say(f"  {start:7.3f} - {end:7.3f}  {status or '':3}  {kind:11s} {path}")
            say(f"  ({len(fetches)} fetch/xhr requests in all)")

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
