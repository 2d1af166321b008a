"""Benchmark ``open_size``: click → notebook visible, by the size of the bundle's catalog (1 MB, 1 GiB, 10 GiB).

The issue-13 question: does a bigger bundle open slower? One stock JupyterHub (tests/fixtures/hub.py), one nbpack
service (gunicorn, local storage) naming it, headless Debian Chromium. Per size, a bundle whose one catalog weighs
``size`` bytes is pushed as a fresh handle each repetition (its notebook named per repetition: Lab restores earlier
tabs, so the tab waited for must be new), its landing page loaded (untimed, reported as ``landing_page``), then its
launch button clicked, timed from the click: hub → nbgitpuller → first (cold) clone of that handle's thin tree → Lab
shows the notebook (``click_to_notebook``). The
baseline (``open_pulled``) opens the same pulled notebook at ``/user/<u>/lab/tree/<dir>/<nb>``; target ≤ 1.2× at
every size. ``folder`` reports the bytes of the pulled folder (target ≤ 10 MB). 10 GiB runs only when asked for.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.download import big_bundle
from bench.harness import Row
from bench.hub_rig import USER, hub_rig
from bench.launch import HUB
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
    from nbpack.hub.links import target_dir_for

    work = workdir / "open_size"
    (work / "data").mkdir(parents=True, exist_ok=True)
    store = work / f"store-{time.time_ns()}"  # a fresh store and cache: every handle is cold
    rows: list[Row] = []
    with hub_rig(
        work,
        "open_size",
        lambda url: f'[[hubs]]\nname = "{HUB}"\nurl = "{url}/"\nlaunch = "nbgitpuller"\npackages = ["pyarrow"]\n',
        store=store,
        cache=Path(f"{store}-cache"),
        client_timeout=3600,
        page_timeout_ms=120_000,
        env={"NBPACK_MAX_BUNDLE_BYTES": str(max(sizes) * 2 + (1 << 30))},
        say=say,
    ) as rig:
        hub, page = rig.hub, rig.page
        landings: list[float] = []

        def click(size: int, k: int) -> tuple[float, str, str, Path]:
            title = f"Open {size_label(size)} {k}"
            say(f"open_size {size_label(size)} #{k}: building and pushing")
            pushed = rig.client.push(_bundle(work / "data", size, title))
            name = rig.client.get(pushed["id"])["payload"]["notebook"]
            folder = target_dir_for(pushed["id"], title)

            def go() -> None:
                rig.click(f'.hub[data-hub="{HUB}"] .hub-launch')
                rig.login_once(120_000)  # the first click lands on the hub's login form

            # Timed from the click on the shown landing page; the page's own load is the landing_page row.
            seconds = rig.open(
                go, name, f"click {size_label(size)}", before=lambda: page.goto(pushed["links"]["landing"])
            )
            landings.append(rig.before_seconds)
            return seconds, folder, name, hub.user_home(USER) / folder

        say("open_size: first click (login, spawn, pull, Lab) on the smallest size")
        warm, *_ = click(min(sizes), 0)
        rows.append(time_row("open_size", "warmup", "first_click", [warm], 0, note="login + spawn + pull + Lab"))
        for size in sizes:
            clicks: list[float] = []
            opens: list[float] = []
            folders: list[int] = []
            landings.clear()
            for k in range(1, repeats + 1):
                seconds, folder, name, pulled = click(size, k)
                clicks.append(seconds)
                folders.append(_folder_bytes(pulled))
                url = f"{hub.url}/user/{USER}/lab/tree/{folder}/{name}"
                opens.append(rig.open(lambda u=url: page.goto(u), name, f"open_pulled {size_label(size)}"))
                say(f"open_size {size_label(size)} #{k}: click {clicks[-1]:.2f}s, open pulled {opens[-1]:.2f}s")
            label = size_label(size)
            # The same median as time_row's (of two runs: their mean, not the slower one).
            med = statistics.median(clicks)
            note = f"pulled folder {max(folders) / 1e6:.2f} MB (target <= {MAX_FOLDER / 1e6:g} MB)"
            rows.append(
                time_row(
                    "open_size",
                    label,
                    "landing_page",
                    list(landings),
                    0,
                    note="the landing page's own load (goto -> load event), before the click; not in the rows below",
                )
            )
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
        rig.profile(say)
    return rows


RUNNER: Any = Runner(
    "open_size",
    "click-to-notebook by catalog size (thin clone) vs opening the already-pulled notebook",
    "bytes",
    small=[10**6],
    default=[10**6, 2**30],
    run=run,
)
