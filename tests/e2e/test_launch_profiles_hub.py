"""Profile launch links against a real JupyterHub 6 configured the stock way, in Chromium.

The hub maps the `profile` user option to a Python environment with `Spawner.apply_user_options` (JupyterHub's
own hook; `options_from_form = "simple"`): profile `extra` points the user's kernels at a second venv holding a
package the hub's own environment lacks (`nbpack-profile-marker`), profile `plain` at the hub's own Python.
The service's ranking picks `extra` for a bundle that wants the marker; its launch link spawns the server with
`?opt-profile=extra` and then pulls with stock nbgitpuller, and the notebook's cells, run in Lab, print the
kernel's `sys.executable` and import the marker. The same hub also allows named servers: the landing page's form
(hub user name) opens the bundle on a server named after the profile while the user's default server runs with
another environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from nbpack.client import Client
from nbpack.hub.links import target_dir_for
from tests.fixtures.hub import JupyterHubServer, NotebookRunError
from tests.fixtures.service import service_env
from tests.helpers import kernel_notebook

pytestmark = pytest.mark.hub

API_KEY = "launch-profiles-api-key-0123456789"
DEFAULT_HUB = "profiles-hub"  # the registry entry without named servers: the default server is spawned
NAMED_HUB = "profiles-hub-named"  # the same hub, registered with named_servers = true
MARKER = "nbpack_profile_marker"
NOTEBOOK = "where.ipynb"


def _make_profile_env(root: Path) -> Path:
    """A venv (without pip) seeing this venv's packages through a .pth, plus the marker distribution."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    (site / "hub-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (site / f"{MARKER}.py").write_text(f"WHERE = {str(root)!r}\n")
    dist = site / "nbpack_profile_marker-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nbpack-profile-marker\nVersion: 1.0\n")
    return root / "bin" / "python"


def _kernels(root: Path, python: str) -> Path:
    """A JUPYTER_PATH entry whose python3 kernel runs ``python``."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return root


def _profile_config(paths: dict[str, str]) -> str:
    return textwrap.dedent(f"""
        # The stock way: a user option applied to the spawner by JupyterHub's own hook.
        PROFILE_PATHS = {paths!r}
        c.JupyterHub.allow_named_servers = True
        c.Spawner.options_from_form = "simple"

        def apply_profile(spawner, user_options):
            slug = user_options.get("profile")
            if slug is None:
                return
            if slug not in PROFILE_PATHS:
                raise ValueError(f"unknown profile {{slug!r}}")
            spawner.environment = {{**spawner.environment, "JUPYTER_PATH": PROFILE_PATHS[slug]}}

        c.Spawner.apply_user_options = apply_profile
        """)


@pytest.fixture(scope="module")
def profile_hub(tmp_path_factory) -> Iterator[tuple[JupyterHubServer, Path]]:
    """A hub whose `extra` profile runs kernels in a venv with the marker; yields it and that venv's python."""
    scratch = tmp_path_factory.mktemp("profile-hub")
    extra_python = _make_profile_env(scratch / "env-extra")
    paths = {
        "plain": str(_kernels(scratch / "kernels-plain", sys.executable)),
        "extra": str(_kernels(scratch / "kernels-extra", str(extra_python))),
    }
    hub = JupyterHubServer(scratch / "hub", extra_config=_profile_config(paths))
    (scratch / "hub").mkdir()
    hub.start()
    try:
        yield hub, extra_python
    finally:
        hub.stop()


def _registry(path: Path, hub_url: str) -> Path:
    profiles = """
[[hubs.profiles]]
slug = "plain"
display_name = "Hub Python"
packages = ["pyarrow"]
[[hubs.profiles]]
slug = "extra"
display_name = "Python with the marker"
packages = ["pyarrow", "nbpack-profile-marker==1.0"]
"""
    path.write_text(
        f'[[hubs]]\nname = "{DEFAULT_HUB}"\nurl = "{hub_url}/"\n{profiles}\n'
        f'[[hubs]]\nname = "{NAMED_HUB}"\nurl = "{hub_url}/"\nnamed_servers = true\n{profiles}'
    )
    return path


def _request(title: str, notebook_name: str = NOTEBOOK) -> dict:
    nb = kernel_notebook(
        None,
        f"import sys\nimport {MARKER}\nprint('python', sys.executable)\nprint('marker', {MARKER}.WHERE)",
        'print("rows", catalogs["stars"].num_rows)',
    )
    return {
        "title": title,
        "catalogs": [{"name": "stars", "rows": [{"ra": 1.5 + i, "dec": -2.0} for i in range(3)]}],
        "notebook": json.loads(nbformat.writes(nb)),
        "notebook_name": notebook_name,
        "requirements": ["pyarrow", "nbpack-profile-marker"],
    }


def _outputs(panel) -> str:
    return "\n".join(panel.locator(".jp-OutputArea-output").all_inner_texts())


@pytest.fixture
def service(profile_hub, start_service, tmp_path):
    hub, _ = profile_hub
    env = service_env(str(tmp_path / "store"), API_KEY, hubs_file=str(_registry(tmp_path / "hubs.toml", hub.url)))
    return start_service(env)


def test_profile_link_spawns_the_profile_then_pulls(profile_hub, service, page):
    hub, extra_python = profile_hub
    client = Client(service.url, API_KEY, timeout=60)
    created = client.create(_request("Where do I run"))
    bid = created["id"]

    ranking = {r["hub"]["name"]: r for r in client.hubs(bid)}
    chosen = ranking[DEFAULT_HUB]
    assert chosen["profile"]["slug"] == "extra"
    assert (
        chosen["reasons"][0]
        == "starts profile 'extra' (Python with the marker), the best of 2 profiles that can run it"
    )
    assert "has nbpack-profile-marker 1.0" in chosen["reasons"]

    page.goto(created["links"]["landing"])
    row = page.locator(f'.hub[data-hub="{DEFAULT_HUB}"]')
    assert row.locator(".hub-profile").get_attribute("data-profile") == "extra"
    assert "already running" in row.locator(".hub-running").inner_text()
    row.locator(".hub-launch").click()
    page.wait_for_url(lambda url: "/hub/login" in url, timeout=60_000)
    assert "opt-profile" in page.url  # the login form will send the user on to the spawn with the option
    hub.login(page, "prof")
    panel = hub.wait_for_lab_notebook(page, NOTEBOOK, timeout=180, cells=2)
    assert f"/user/prof/lab/tree/{target_dir_for(bid, 'Where do I run')}/{NOTEBOOK}" in page.url

    model = hub.api("GET", "/users/prof").json()
    assert model["servers"][""]["user_options"] == {"profile": "extra"}
    hub.run_all_in_lab(page, timeout=180)
    text = _outputs(panel)
    assert f"python {extra_python}" in text, text
    assert f"marker {extra_python.parent.parent}" in text
    assert "rows 3" in text
    page.goto("about:blank")


def test_named_server_link_runs_the_profile_beside_a_running_default_server(profile_hub, service, page):
    hub, extra_python = profile_hub
    user = "named"
    hub.start_server(user)  # the default server, started without options: the hub's own Python
    client = Client(service.url, API_KEY, timeout=60)
    created = client.create(_request("On its own server"))
    folder = target_dir_for(created["id"], "On its own server")

    page.goto(created["links"]["landing"])
    row = page.locator(f'.hub[data-hub="{NAMED_HUB}"]')
    row.locator('.hub-named input[name="user"]').fill(user)
    row.locator(".hub-named button").click()
    page.wait_for_url(lambda url: "/hub/login" in url, timeout=60_000)
    hub.login(page, user)
    panel = hub.wait_for_lab_notebook(page, NOTEBOOK, timeout=180, cells=2)
    assert f"/user/{user}/extra/lab/tree/{folder}/{NOTEBOOK}" in page.url

    servers = hub.api("GET", f"/users/{user}").json()["servers"]
    assert servers["extra"]["user_options"] == {"profile": "extra"} and servers[""]["user_options"] == {}
    hub.run_all_in_lab(page, timeout=180)
    text = _outputs(panel)
    assert f"python {extra_python}" in text, text
    assert "rows 3" in text

    # The default server still runs the hub's own Python (same home, same clone): the marker is not there.
    page.goto("about:blank")
    with pytest.raises(NotebookRunError, match="ModuleNotFoundError"):
        hub.run_notebook_in_user_kernel(user, f"{folder}/{NOTEBOOK}")

    # The next bundle's link finds the profile's server running: no second spawn, straight to the pull.
    again = client.create(_request("Second on its own server", "again.ipynb"))
    page.goto(again["links"]["landing"])
    row = page.locator(f'.hub[data-hub="{NAMED_HUB}"]')
    row.locator('.hub-named input[name="user"]').fill(user)
    row.locator(".hub-named button").click()
    hub.wait_for_lab_notebook(page, "again.ipynb", timeout=180, cells=2)
    folder2 = target_dir_for(again["id"], "Second on its own server")
    assert f"/user/{user}/extra/lab/tree/{folder2}/again.ipynb" in page.url
    assert hub.api("GET", f"/users/{user}").json()["servers"]["extra"]["started"] == servers["extra"]["started"]
    page.goto("about:blank")
