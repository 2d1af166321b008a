"""Launch links: hub profiles (registry, ranking), the fromurl mode, JupyterHub spawn links, the landing page.

Link formats are checked against what JupyterHub 6 and jupyterlab-open-url-parameter read (their behaviour is
exercised for real in tests/e2e/test_launch_profiles_hub.py and tests/e2e/test_launch_fromurl_hub.py).
"""

from __future__ import annotations

import html as html_lib
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from nbpack.errors import InvalidInput
from nbpack.hub.links import Spawn, launch_url
from nbpack.hub.ranking import rank_hubs
from nbpack.hub.registry import hub_from_dict, load_registry
from tests.helpers import APP_API_KEY, app_with_hub
from tests.openapi_check import check_response

REPO = "https://nbpack.example.org/git/TOKEN/h-0123.git"
NB_URL = "https://nbpack.example.org/files/TOKEN/h-0123/analysis.ipynb"

PROFILES = [
    {"slug": "small", "display_name": "Small", "memory_gb": 2},
    {"slug": "big", "display_name": "Big", "memory_gb": 64, "packages": ["astropy==6.0.1"]},
    {"slug": "gpu", "gpu": True, "memory_gb": 64},
]


def _hub(**extra: Any) -> dict:
    return {"name": "H", "url": "https://hub.example.org/", "packages": ["numpy==1.26.4"], **extra}


def _manifest(requirements: list[str] | None = None, **needs: Any) -> dict:
    return {"payload": {"requirements": requirements or [], "hub": needs}, "files": []}


# ---------------------------------------------------------------- registry


def test_profiles_parse_and_inherit_the_hub_fields():
    hub = hub_from_dict(_hub(profiles=PROFILES, named_servers=True, profile_option="image"))
    assert [p.slug for p in hub.profiles] == ["small", "big", "gpu"]
    assert hub.named_servers and hub.profile_option == "image"
    small = hub.with_profile(hub.profiles[0])
    assert small.memory_gb == 2 and small.packages == ["numpy==1.26.4"] and small.gpu is False
    assert hub.with_profile(hub.profiles[1]).packages == ["astropy==6.0.1"]
    assert hub_from_dict(_hub()).profile_option == "profile"


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"profiles": [{"slug": "Big"}]}, "'slug' must be 1-30 lowercase"),
        ({"profiles": [{"slug": "a--b"}]}, "'slug' must be 1-30 lowercase"),
        ({"profiles": [{"slug": "x" * 31}]}, "'slug' must be 1-30 lowercase"),
        ({"profiles": [{"slug": "ok-1", "cores": 2}]}, "unknown field(s) 'cores'"),
        ({"profiles": [{"slug": "a"}, {"slug": "a"}]}, "two profiles have the same 'slug'"),
        ({"profiles": [{"slug": "a", "gpu": "yes"}]}, "'gpu' must be true or false"),
        ({"profiles": [{"slug": "a", "packages": ["not a req!"]}]}, "is not a pip requirement"),
        ({"profiles": {"slug": "a"}}, "'profiles' must be a list"),
        ({"profiles": ["a"]}, "each profile must be a table"),
        ({"profile_option": "opt profile"}, "'profile_option' must be a user-option name"),
        ({"named_servers": "yes"}, "'named_servers' must be true or false"),
        ({"launch": "voila"}, "'launch' must be one of nbgitpuller, binderhub, fromurl"),
    ],
)
def test_bad_profile_fields_are_named(extra, message):
    with pytest.raises(InvalidInput) as err:
        hub_from_dict(_hub(**extra))
    assert message in str(err.value)


def test_fromurl_registry_in_toml(tmp_path):
    path = tmp_path / "hubs.toml"
    path.write_text(
        '[[hubs]]\nname = "Lite"\nurl = "https://lite.example.org/"\nlaunch = "fromurl"\n'
        '[[hubs.profiles]]\nslug = "default"\n'
    )
    (hub,) = load_registry(path)
    assert hub.launch == "fromurl" and hub.profiles[0].slug == "default"


# ---------------------------------------------------------------- ranking


def test_ranking_picks_the_only_profile_that_can_run_and_says_why():
    hub = hub_from_dict(_hub(profiles=PROFILES))
    (rank,) = rank_hubs([hub], _manifest(gpu=True))
    assert rank.can_run and rank.profile.slug == "gpu"
    assert rank.reasons[0] == "starts profile 'gpu', the only one of its 3 profiles that can run it"
    assert "has a GPU" in rank.reasons
    doc = rank.to_json()
    assert doc["profile"]["slug"] == "gpu" and doc["hub"]["profiles"][2]["gpu"] is True


def test_ranking_prefers_the_profile_with_the_packages_then_fewer_resources():
    hub = hub_from_dict(_hub(profiles=PROFILES))
    (rank,) = rank_hubs([hub], _manifest(["astropy>=6"], memory_gb=8))
    assert rank.profile.slug == "big"  # small lacks the memory; gpu has no astropy and a surplus GPU
    assert rank.reasons[0] == "starts profile 'big' (Big), the best of 2 profiles that can run it"
    assert "has astropy 6.0.1" in rank.reasons and "offers 64 GB of memory (needs 8 GB)" in rank.reasons
    (plain,) = rank_hubs([hub], _manifest())
    assert plain.profile.slug == "small"  # no needs: the least surplus (no GPU, least memory)


def test_ranking_names_the_closest_profile_when_none_can_run():
    hub = hub_from_dict(_hub(profiles=PROFILES[:2]))
    (rank,) = rank_hubs([hub], _manifest(gpu=True))
    assert not rank.can_run and rank.score == -1.0
    assert rank.reasons[0].startswith("none of its 2 profiles can run it; the closest is ")
    assert "needs a GPU; this hub has none" in rank.reasons


def test_a_profiled_hub_ranks_against_plain_hubs_by_its_best_profile():
    plain = hub_from_dict({"name": "A", "url": "https://a.example.org/", "memory_gb": 4})
    profiled = hub_from_dict(_hub(profiles=PROFILES))
    ranks = rank_hubs([plain, profiled], _manifest(memory_gb=16))
    assert [r.hub.name for r in ranks] == ["H", "A"] and not ranks[1].can_run
    assert "profile" not in ranks[1].to_json() and ranks[0].to_json()["profile"]["slug"] == "big"


# ---------------------------------------------------------------- links


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_fromurl_link_is_the_open_url_extensions_form():
    url = launch_url(
        "https://hub.example.org/", "fromurl", REPO, notebook="a b.ipynb", target_dir="t-1", notebook_url=NB_URL
    )
    assert url.startswith("https://hub.example.org/hub/user-redirect/lab?")
    assert _query(url) == {"fromURL": NB_URL, "fromURLToFolder": "t-1"}
    with pytest.raises(InvalidInput, match="notebook URL must be an http"):
        launch_url("https://hub.example.org/", "fromurl", REPO, notebook="a.ipynb", target_dir="t", notebook_url="")


def test_spawn_link_on_the_default_server_then_pulls():
    url = launch_url(
        "https://hub.example.org/jhub/",
        "nbgitpuller",
        REPO,
        notebook="a.ipynb",
        target_dir="t-1",
        spawn=Spawn("profile", "big", server="big"),  # no user name: the default server
    )
    assert url.startswith("https://hub.example.org/jhub/hub/spawn?")
    query = _query(url)
    assert query["opt-profile"] == "big"
    nxt = query["next"]
    assert nxt.startswith("/jhub/hub/user-redirect/git-pull?")  # JupyterHub only follows same-host paths
    assert _query(nxt) == {"repo": REPO, "branch": "main", "urlpath": "lab/tree/t-1/a.ipynb", "targetpath": "t-1"}


def test_spawn_link_on_a_named_server_carries_the_user_name_escaped():
    url = launch_url(
        "https://hub.example.org",
        "fromurl",
        REPO,
        notebook="a.ipynb",
        target_dir="t-1",
        notebook_url=NB_URL,
        spawn=Spawn("image", "gpu", server="gpu", user="jo doe/x@y"),
    )
    parts = urlsplit(url)
    assert parts.path == "/hub/spawn/jo%20doe%2Fx@y/gpu"
    query = _query(url)
    assert query["opt-image"] == "gpu"
    assert query["next"].startswith("/user/jo%20doe%2Fx@y/gpu/lab?")
    assert _query(query["next"])["fromURL"] == NB_URL


@pytest.mark.parametrize("user", ["", " lead", "a\nb", "x" * 256])
def test_bad_hub_user_names_are_refused_or_ignored(user):
    spawn = Spawn("profile", "big", server="big", user=user)
    if not user:  # no name: the default server's spawn link
        assert "/hub/spawn?" in launch_url(
            "https://h.org", "nbgitpuller", REPO, notebook="a.ipynb", target_dir="t", spawn=spawn
        )
        return
    with pytest.raises(InvalidInput, match="hub user name"):
        launch_url("https://h.org", "nbgitpuller", REPO, notebook="a.ipynb", target_dir="t", spawn=spawn)


def test_binderhub_ignores_profiles():
    url = launch_url("https://b.org", "binderhub", REPO, notebook="a.ipynb", spawn=Spawn("profile", "x"))
    assert url.startswith("https://b.org/v2/git/") and "opt-" not in url


# ---------------------------------------------------------------- service and landing page


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "hubs.toml"
    path.write_text(
        '[[hubs]]\nname = "Named"\nurl = "https://named.example.org/"\nnamed_servers = true\n'
        '[[hubs.profiles]]\nslug = "small"\nmemory_gb = 2\n'
        '[[hubs.profiles]]\nslug = "big"\nmemory_gb = 64\ndisplay_name = "Big one"\n'
        '[[hubs]]\nname = "Plain"\nurl = "https://plain.example.org/"\n'
    )
    return {"hubs_file": str(path)}


@pytest.fixture
def created(client) -> dict:
    resp = client.post(
        "/api/v1/bundles",
        json={"title": "Profiled", "catalogs": [{"name": "s", "rows": [{"a": 1}]}]},
        headers={"Authorization": f"Bearer {APP_API_KEY}"},
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_launch_redirect_spawns_the_ranked_profile(client, created):
    link = created["links"]["launch"]["Named"]
    resp = client.get(link.removeprefix("http://localhost"))
    assert resp.status_code == 302
    target = resp.headers["Location"]
    assert target.startswith("https://named.example.org/hub/spawn?") and _query(target)["opt-profile"] == "small"
    named = client.get(link.removeprefix("http://localhost") + "&user=ada")
    target = named.headers["Location"]
    assert urlsplit(target).path == "/hub/spawn/ada/small"
    assert _query(target)["next"].startswith("/user/ada/small/git-pull?")
    plain = client.get(created["links"]["launch"]["Plain"].removeprefix("http://localhost"))
    assert plain.headers["Location"].startswith("https://plain.example.org/hub/user-redirect/git-pull?")
    bad = client.get(link.removeprefix("http://localhost") + "&user=%0Aroot")
    assert bad.status_code == 400 and check_response(bad)["error"] == "invalid_input"


def test_hubs_answer_names_the_profile(client, created):
    resp = client.get(f"/api/v1/bundles/{created['id']}/hubs", headers={"Authorization": f"Bearer {APP_API_KEY}"})
    ranks = {r["hub"]["name"]: r for r in check_response(resp)["hubs"]}
    assert ranks["Named"]["profile"] == {
        "slug": "small",
        "display_name": "",
        "packages": None,
        "images": None,
        "gpu": None,
        "memory_gb": 2.0,
        "cpus": None,
    }
    assert "profile" not in ranks["Plain"]


def test_landing_shows_profile_reason_and_named_server_form(client, created):
    resp = client.get(created["links"]["landing"].removeprefix("http://localhost"))
    html = resp.get_data(as_text=True)
    assert 'data-profile="small"' in html and "starts profile &#39;small&#39;, the best of 2 profiles" in html
    assert 'class="hub-named"' in html and 'name="user"' in html
    assert "form-action 'self' https://named.example.org;" in resp.headers["Content-Security-Policy"]
    assert unquote(html).count("hub-running") == 1  # the profiled hub only


def test_landing_buttons_link_straight_to_the_hub_without_the_read_token(client, created):
    """A click costs no round trip through the service: each button's href is where the launch route would redirect
    (same git URL the page shows, so no capability is widened), and the page's read token is not in it."""
    landing = created["links"]["landing"].removeprefix("http://localhost")
    read_token = _query(landing)["t"]
    html = client.get(landing).get_data(as_text=True)
    buttons = dict(re.findall(r'data-hub="([^"]+)">\s*<a class="button hub-launch" href="([^"]+)"', html))
    assert set(buttons) == {"Named", "Plain"}
    for name, href in buttons.items():
        redirected = client.get(created["links"]["launch"][name].removeprefix("http://localhost"))
        assert redirected.status_code == 302
        assert html_lib.unescape(href) == redirected.headers["Location"]
        assert read_token not in html_lib.unescape(href)
    assert buttons["Plain"].startswith("https://plain.example.org/hub/user-redirect/git-pull?")
    # The named-server form needs the user's name: it still goes through the service's launch route.
    assert 'class="hub-named" method="get" action="http://localhost/b/' in html


def _built(cache: Path, bid: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (cache / "git" / f"{bid}.git" / "refs" / "heads" / "main").is_file():
            return True
        time.sleep(0.05)
    return False


def test_landing_builds_the_repository_a_click_will_clone(client, created, tmp_path):
    """nbgitpuller's first ls-remote waits for the repository's build: the landing page has it built beforehand."""
    assert not _built(tmp_path / "cache", created["id"], 0)
    client.get(created["links"]["landing"].removeprefix("http://localhost"))
    assert _built(tmp_path / "cache", created["id"], 30)


def test_landing_of_fromurl_hubs_only_builds_nothing(tmp_path):
    client, created = app_with_hub(
        tmp_path, 'name = "Lite"\nurl = "https://lite.example.org/"\nlaunch = "fromurl"\n', "Lite"
    )
    assert client.get(created["links"]["landing"].removeprefix("http://localhost")).status_code == 200
    assert not _built(tmp_path / "cache", created["id"], 1.0)
