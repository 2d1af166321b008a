"""The notebook-only path in a real JupyterHub and Chromium: a user who has nothing but the downloaded notebook.

The service (gunicorn, SeaweedFS storage) serves links.notebook; the file goes into the hub user's home as a
browser download would put it, Lab opens it, Run All runs it: the bootstrap cell fetches the pinned runtime and the
manifest from the service, the catalogs load (summary shown), and the results cell sends the return, which the
service then lists.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from nbpack.client import Client
from tests.fixtures.service import service_env
from tests.helpers import template_notebook, wait_for_returns

pytestmark = pytest.mark.hub

API_KEY = "lone-e2e-api-key-0123456789"
USER = "lone"
NOTEBOOK = "lone-e2e.ipynb"
POLL_SECONDS = 60

CELL = 'print("rows", {name: table.num_rows for name, table in catalogs.items()})'


def test_lone_notebook_opened_in_lab_runs_all_and_returns(
    jupyterhub, page, s3_bucket, seaweedfs, start_service, tmp_path
) -> None:
    env = service_env(
        f"s3://{s3_bucket}/lone",
        API_KEY,
        s3_endpoint=seaweedfs.endpoint,
        cache_dir=str(tmp_path / "service-cache"),
    )
    service = start_service(env)
    client = Client(service.url, API_KEY, timeout=60)
    created = client.create(
        {
            "title": "Lone in Lab",
            "catalogs": [
                {"name": "stars", "rows": [{"id": 2**53 + i, "mag": 12.0 + i / 10} for i in range(7)]},
                {"name": "big", "rows": [{"i": i, "name": f"ré, {i}"} for i in range(3000)]},
            ],
            "notebook": json.loads(template_notebook(CELL)),
            "notebook_name": NOTEBOOK,
        }
    )
    hid, link = created["id"], created["links"]["notebook"]
    assert link.endswith("/" + NOTEBOOK)

    # What a browser download leaves: the one file, named after the URL path, in the user's home.
    jupyterhub.start_server(USER)
    home = jupyterhub.user_home(USER)
    with urllib.request.urlopen(link, timeout=30) as answer:
        (home / NOTEBOOK).write_bytes(answer.read())
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith(".")) == [NOTEBOOK]

    timings: dict[str, float] = {}
    page.goto(f"{jupyterhub.url}/hub/login")
    jupyterhub.login(page, USER)
    began = time.monotonic()
    page.goto(f"{jupyterhub.url}/user/{USER}/lab/tree/{NOTEBOOK}")
    panel = jupyterhub.wait_for_lab_notebook(page, NOTEBOOK, cells=3)
    timings["open_to_notebook_shown"] = time.monotonic() - began
    began = time.monotonic()
    jupyterhub.run_all_in_lab(page)
    timings["lab_run_all"] = time.monotonic() - began

    # The bootstrap cell's summary, as Lab shows it (the runtime came from the service, not from the home folder).
    summary = panel.locator(".jp-Cell").nth(0).locator(".jp-OutputArea")
    summary.get_by_text("stars: 7 rows", exact=False).first.wait_for(state="visible", timeout=30_000)
    assert "big: 3000 rows" in summary.inner_text()
    assert "rows {'stars': 7, 'big': 3000}" in panel.locator(".jp-Cell").nth(1).inner_text()
    results = panel.locator(".jp-Cell").nth(2).locator(".jp-OutputArea")
    results.get_by_text("uploaded as r-", exact=False).first.wait_for(state="visible", timeout=60_000)
    assert not (home / "nbpack.json").exists() and not (home / "nbpack_runtime").exists()
    assert list((home / ".cache" / "nbpack" / "runtime").glob("*/nbpack_runtime/__init__.py"))

    returns = wait_for_returns(client, hid, POLL_SECONDS)
    assert len(returns) == 1 and returns[0]["status"] == "completed", returns
    got = client.get_return(hid, returns[0]["id"])
    assert got["notebook"] == NOTEBOOK
    assert got["provenance"]["notebook_file"]["source"] == "jupyter"
    page.goto("about:blank")
    print("timings (s):", {key: round(value, 2) for key, value in timings.items()})
