"""Which way a hub opens a bundle by default (``hub.launch.launch_modes``, ``bundle.lone.lone_gap``).

The notebook alone (fromurl) is the default on an nbgitpuller hub that declares the open-url extension only when it
lacks nothing a clone has; a payload with files of its own is cloned, and the other way is the page's second link.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.bundle.lone import LAB_UPLOAD_PROMPT_BYTES, lone_gap
from nbpack.errors import InvalidInput
from nbpack.hub.launch import hub_launch_url, launch_modes
from nbpack.hub.registry import Hub, hub_from_dict
from tests.helpers import app_with_hub
from tests.openapi_check import check_response

GIT = "https://nbpack.example/git/T/h-1.git"
NB_URL = "https://nbpack.example/nb/T/h-1/x.ipynb"
OPEN_URL_HUB = Hub(name="lab", url="https://hub.example", launch="nbgitpuller", open_url=True)


def _manifest(tmp_path: Path, **spec: Any) -> dict[str, Any]:
    csv = tmp_path / "s.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    return build_bundle(BuildSpec(title="T", catalogs=[CatalogInput("s", csv)], **spec), tmp_path / "b.zip")


def _notebook(text: str = "1") -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(text)]
    return nbformat.writes(nb).encode()


def test_a_generated_or_one_notebook_bundle_lacks_nothing_alone(tmp_path):
    # Fails when a build starts writing a member the lone notebook cannot reach and the rule does not name it.
    assert lone_gap(_manifest(tmp_path)) == ""
    assert lone_gap(_manifest(tmp_path, notebook=_notebook(), notebook_name="mine.ipynb")) == ""
    # repo2docker's files (a git payload's) are read by an image build, never by the notebook.
    assert lone_gap(_manifest(tmp_path, extra_files={"binder/postBuild": b"#!/bin/sh\n", "apt.txt": b"git\n"})) == ""


def test_a_payload_file_of_its_own_or_a_huge_notebook_is_a_gap(tmp_path):
    gap = lone_gap(_manifest(tmp_path, extra_files={"helpers.py": b"X = 1\n", "data/a.txt": b"a"}))
    assert "2 file(s) of its own" in gap and "helpers.py" in gap and "data/a.txt" in gap
    assert "file(s) of its own (binder/util.py)" in lone_gap(_manifest(tmp_path, extra_files={"binder/util.py": b""}))
    big = _notebook("x = '" + "a" * LAB_UPLOAD_PROMPT_BYTES + "'")
    assert "JupyterLab asks before uploading" in lone_gap(_manifest(tmp_path, notebook=big, notebook_name="b.ipynb"))


def test_launch_modes_rule(tmp_path):
    plain = _manifest(tmp_path)
    helper = _manifest(tmp_path, extra_files={"helpers.py": b"X = 1\n"})
    assert launch_modes(OPEN_URL_HUB, plain) == ["fromurl", "nbgitpuller"]
    assert launch_modes(OPEN_URL_HUB, helper) == ["nbgitpuller", "fromurl"]
    assert launch_modes(Hub(name="p", url="https://h.example"), plain) == ["nbgitpuller"]
    assert launch_modes(Hub(name="f", url="https://h.example", launch="fromurl", open_url=True), helper) == ["fromurl"]
    assert launch_modes(Hub(name="b", url="https://b.example", launch="binderhub"), plain) == ["binderhub"]
    default = hub_launch_url(OPEN_URL_HUB, "h-1", plain, git_url=GIT, notebook_url=NB_URL)
    assert default.startswith("https://hub.example/hub/user-redirect/lab?fromURL=")
    cloned = hub_launch_url(OPEN_URL_HUB, "h-1", helper, git_url=GIT, notebook_url=NB_URL)
    assert cloned.startswith("https://hub.example/hub/user-redirect/git-pull?")
    second = hub_launch_url(OPEN_URL_HUB, "h-1", plain, git_url=GIT, notebook_url=NB_URL, mode="nbgitpuller")
    assert second.startswith("https://hub.example/hub/user-redirect/git-pull?")
    with pytest.raises(InvalidInput, match="opens this bundle with fromurl or nbgitpuller, not 'binderhub'"):
        hub_launch_url(OPEN_URL_HUB, "h-1", plain, git_url=GIT, notebook_url=NB_URL, mode="binderhub")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"open_url": "yes"}, "'open_url' must be true or false"),
        ({"launch": "binderhub", "open_url": True}, "a BinderHub opens what it builds"),
        ({"launch": "fromurl", "open_url": False}, "'open_url' cannot be false"),
    ],
)
def test_bad_open_url_declarations_are_named(fields, message):
    with pytest.raises(InvalidInput, match=message):
        hub_from_dict({"name": "h", "url": "https://h.example/", **fields})


def test_open_url_defaults_off_and_follows_a_fromurl_hub():
    assert hub_from_dict({"name": "h", "url": "https://h.example/"}).open_url is False
    assert hub_from_dict({"name": "h", "url": "https://h.example/", "launch": "fromurl"}).open_url is True


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_landing_default_button_is_the_lone_notebook_and_the_clone_a_second_link(tmp_path):
    client, created = app_with_hub(
        tmp_path, 'name = "Lab"\nurl = "https://lab.example.org/"\nopen_url = true\n', "Lone"
    )
    launch = created["links"]["launch"]["Lab"].removeprefix("http://localhost")
    redirected = client.get(launch)
    assert redirected.status_code == 302
    assert (
        _query(redirected.headers["Location"].split("user-redirect/", 1)[1])["fromURL"] == created["links"]["notebook"]
    )
    page = client.get(created["links"]["landing"].removeprefix("http://localhost")).get_data(as_text=True)
    button = re.search(r'class="button hub-launch" href="([^"]+)"', page)
    other = re.search(r'class="hub-other" data-mode="nbgitpuller" href="([^"]+)"', page)
    assert button and other
    assert html_lib.unescape(button.group(1)) == redirected.headers["Location"]
    via = client.get(launch + "&via=nbgitpuller")
    assert via.status_code == 302 and html_lib.unescape(other.group(1)) == via.headers["Location"]
    assert via.headers["Location"].startswith("https://lab.example.org/hub/user-redirect/git-pull?")
    bad = client.get(launch + "&via=binderhub")
    assert bad.status_code == 400 and check_response(bad)["error"] == "invalid_input"
