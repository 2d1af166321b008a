"""The `fromurl` launch mode in a real JupyterHub whose user environment has jupyterlab-open-url-parameter (PyPI).

The hub is an nbgitpuller hub that declares the extension (`open_url = true`): for this one-notebook bundle the
landing page's default button is the notebook alone, nbgitpuller its second link (`launch.launch_modes`).
Landing page button → service redirect → `/hub/user-redirect/lab?fromURL=<links.notebook>&fromURLToFolder=<dir>`
→ login → Lab, where the extension fetches the lone notebook from the service (cross-origin) and opens it →
Run All in Lab: the bootstrap cell fetches the runtime and manifest, the catalog is read lazily from the files
endpoint, the results cell sends the return → the service lists it. No git, no clone: only the notebook lands.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from nbpack.client import Client
from nbpack.hub.links import target_dir_for
from tests.fixtures.service import service_env
from tests.helpers import kernel_notebook, wait_for_returns

pytestmark = pytest.mark.hub

API_KEY = "launch-fromurl-api-key-0123456789"
HUB = "lite-hub"
USER = "lite"
NOTEBOOK = "alone.ipynb"
TITLE = "Only the notebook"
POLL_SECONDS = 60


def _request() -> dict:
    nb = kernel_notebook(
        "# Alone",
        'rows = catalogs["stars"].num_rows\nprint("catalog rows", rows)',
        'nbpack_runtime.save_value("rows", rows)\nprint("saved")',
    )
    return {
        "title": TITLE,
        "catalogs": [{"name": "stars", "rows": [{"id": 2**60 + i, "mag": 12.0 + i / 4} for i in range(5)]}],
        "notebook": json.loads(nbformat.writes(nb)),
        "notebook_name": NOTEBOOK,
        "requirements": ["pyarrow"],
    }


def test_fromurl_click_opens_the_lone_notebook_runs_and_returns(jupyterhub, start_service, page, tmp_path):
    registry = tmp_path / "hubs.toml"
    registry.write_text(f'[[hubs]]\nname = "{HUB}"\nurl = "{jupyterhub.url}/"\nopen_url = true\n')
    service = start_service(service_env(str(tmp_path / "store"), API_KEY, hubs_file=str(registry)))
    client = Client(service.url, API_KEY, timeout=60)
    created = client.create(_request())
    bid, links = created["id"], created["links"]
    folder = target_dir_for(bid, TITLE)

    page.goto(links["landing"])
    assert page.locator("#notebook-only").get_attribute("href") == links["notebook"]
    row = page.locator(f'.hub[data-hub="{HUB}"]')
    assert "/hub/user-redirect/git-pull?" in (
        row.locator('.hub-other[data-mode="nbgitpuller"]').get_attribute("href") or ""
    )
    page.locator(f'.hub[data-hub="{HUB}"] .hub-launch').click()
    page.wait_for_url(lambda url: "/hub/login" in url, timeout=60_000)
    assert "fromURL" in page.url
    jupyterhub.login(page, USER)
    panel = jupyterhub.wait_for_lab_notebook(page, NOTEBOOK, timeout=180, cells=5)
    # The extension drops its parameters from the address once it has opened the file.
    page.wait_for_url(lambda url: "fromURL" not in url, timeout=30_000)

    home = jupyterhub.user_home(USER)
    assert (home / folder / NOTEBOOK).is_file()
    # No clone: the notebook alone (Lab keeps its checkpoints in a hidden folder).
    assert sorted(p.name for p in (home / folder).iterdir() if not p.name.startswith(".")) == [NOTEBOOK]

    jupyterhub.run_all_in_lab(page, timeout=180)
    text = "\n".join(panel.locator(".jp-OutputArea-output").all_inner_texts())
    assert "catalog rows 5" in text, text
    assert "saved" in text and "uploaded as r-" in text, text

    returns = wait_for_returns(client, bid, POLL_SECONDS)
    assert len(returns) == 1, returns
    assert returns[0]["status"] == "completed" and returns[0]["values"] == ["rows"]
    assert client.get_return(bid, returns[0]["id"])["values"][0]["data"] == 5
    page.goto("about:blank")
