"""nbpack/service/launch.py: a launch button's URL carries this handle's git (and, for fromurl, notebook) link,
an unknown hub is a 404, and the landing page's direct links leave out a hub whose link cannot be made."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from nbpack.clock import iso, now
from nbpack.errors import NotFound
from nbpack.hub.registry import Hub
from nbpack.ids import new_handle_id
from nbpack.service.capabilities import Capabilities
from nbpack.service.context import Context
from nbpack.service.handle import Handle
from nbpack.service.launch import Launcher
from nbpack.store.backends import open_storage
from tests.conftest import FakeClock
from tests.helpers import make_config

BASE = "https://nbpack.example"
MANIFEST = {"id": "b-0123456789abcdef01234567", "title": "Cône, Pléiades", "payload": {"notebook": "my nb.ipynb"}}
HUBS = [
    Hub(name="lab", url="https://hub.example", launch="nbgitpuller"),
    Hub(name="lone", url="https://lone.example", launch="fromurl"),
    Hub(name="broken", url="ftp://nowhere", launch="nbgitpuller"),
]


@pytest.fixture
def launcher(tmp_path: Path) -> Launcher:
    config = make_config(tmp_path, storage=f"memory://launch-{uuid.uuid4().hex}")
    ctx = Context(config, open_storage(config.storage_url), tmp_path)
    return Launcher(Capabilities(ctx, HUBS), HUBS)


def _handle(nonce: str = "n1") -> Handle:
    return Handle(
        id=new_handle_id(),
        tenant="default",
        owner=None,
        content_id=MANIFEST["id"],
        title=MANIFEST["title"],
        nonce=nonce,
        created=iso(now()),
        created_ms=0,
        expires=iso(now() + timedelta(days=1)),
        callback_url=None,
        bytes=0,
        parts=(),
    )


def test_a_hub_link_pulls_this_handles_repository(launcher: Launcher, clock: FakeClock) -> None:
    handle = _handle()
    link = launcher.url(handle, MANIFEST, "lab", BASE)
    assert link.startswith("https://hub.example/hub/user-redirect/git-pull?")
    query = parse_qs(urlsplit(link).query)
    assert query["repo"] == [launcher.access.git_url(handle, BASE)]
    assert query["repo"][0].startswith(f"{BASE}/git/") and query["repo"][0].endswith(f"/{handle.id}.git")
    target = query["targetpath"][0]
    assert target.startswith("cone-pleiades-")  # the folder named after the title, accents and commas folded
    assert query["urlpath"] == [f"lab/tree/{target}/my%20nb.ipynb"]
    # A new nonce (a new handle) means a new token: the old link's repository URL no longer matches.
    assert launcher.url(_handle("n2"), MANIFEST, "lab", BASE) != link


def test_a_fromurl_hub_gets_the_lone_notebook_link(launcher: Launcher, clock: FakeClock) -> None:
    handle = _handle()
    link = unquote(launcher.url(handle, MANIFEST, "lone", BASE))
    assert launcher.access.notebook_url(handle, BASE, "my nb.ipynb") in link


def test_an_unknown_hub_is_not_found(launcher: Launcher, clock: FakeClock) -> None:
    with pytest.raises(NotFound, match="no hub named 'nope'"):
        launcher.url(_handle(), MANIFEST, "nope", BASE)


def test_direct_links_leave_out_a_hub_whose_link_cannot_be_made(launcher: Launcher, clock: FakeClock) -> None:
    handle = _handle()
    direct = launcher.direct_urls(handle, MANIFEST, BASE)
    assert sorted(direct) == ["lab", "lone"]
    assert direct["lab"] == {"nbgitpuller": launcher.url(handle, MANIFEST, "lab", BASE)}
    assert direct["lone"] == {"fromurl": launcher.url(handle, MANIFEST, "lone", BASE)}


def test_the_ranking_lists_each_hub_with_reasons(launcher: Launcher) -> None:
    ranked = launcher.ranking(MANIFEST)
    assert sorted(r["hub"]["name"] for r in ranked) == sorted(h.name for h in HUBS)
    assert all(isinstance(r["reasons"], list) and isinstance(r["can_run"], bool) for r in ranked)
