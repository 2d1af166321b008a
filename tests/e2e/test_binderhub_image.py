"""BinderHub links, held against BinderHub's own code: one image per handle, no short-lived token in its name.

BinderHub is not installable from PyPI (the only release there, 0.1.0 of 2018, fails to build), so its modules are
vendored unmodified under ``tests/vendor/binderhub_src`` (source commit and licence in its README). The link goes
through a live nbpack service (gunicorn); BinderHub's ``GitRepoProvider`` resolves the ref with its own
``git ls-remote`` against that service, and the image and build names come from BinderHub's ``builder`` functions.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from nbpack.hub import links
from tests.fixtures.service import service_env

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "binderhub_src"
API_KEY = "binder-test-key"
SECRET = "binder-test-secret-0123456789abcdef"
HUB = "ESCAPE BinderHub"
IMAGE_PREFIX = "registry.example.org/binder/nbpack-"  # what a BinderHub's image_prefix setting looks like


@pytest.fixture(scope="module")
def binderhub():  # noqa: ANN201 - the vendored package
    sys.path.insert(0, str(VENDOR))
    try:
        import binderhub.builder
        import binderhub.repoproviders

        yield binderhub
    finally:
        sys.path.remove(str(VENDOR))
        for name in [m for m in sys.modules if m == "binderhub" or m.startswith("binderhub.")]:
            del sys.modules[name]


def _call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _binder_location(launch: str) -> str:
    """Where the service's launch link redirects (not followed: BinderHub is not running here)."""
    parts = urlsplit(launch)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 302, resp.status
        return resp.headers["Location"]
    finally:
        conn.close()


def _image(binderhub, location: str) -> dict:  # noqa: ANN001
    """What a BinderHub would build for ``location``: provider, resolved ref, image and build names."""
    parts = urlsplit(location)
    assert parts.path.startswith("/v2/git/")
    # BinderHub's BaseHandler.get_spec_from_request: the raw (still escaped) path after the provider prefix.
    spec = parts.path[len("/v2/git/") :]
    provider = binderhub.repoproviders.GitRepoProvider(spec=spec)
    ref = asyncio.run(provider.get_resolved_ref())
    slug = provider.get_build_slug()
    # As BuildHandler.get composes them (binderhub/builder.py, the lines after "generate a complete build name").
    safe_slug = binderhub.builder._safe_build_slug(slug, limit=255 - len(IMAGE_PREFIX))
    image = f"{IMAGE_PREFIX}{safe_slug}:{ref}".replace("_", "-").lower()
    build = binderhub.builder._generate_build_name(slug, ref, prefix="build-")
    return {"repo": provider.get_repo_url(), "ref": ref, "image": image, "build": build, "query": parts.query}


@pytest.mark.timeout(180)
def test_binderhub_builds_one_image_per_handle_from_a_url_without_expiring_tokens(
    tmp_path: Path, start_service, binderhub
) -> None:  # noqa: ANN001
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(f'[[hubs]]\nname = "{HUB}"\nurl = "https://binder.example.org/"\nlaunch = "binderhub"\n')
    env = service_env(str(tmp_path / "store"), API_KEY, secret_key=SECRET, hubs_file=str(hubs))
    env["NBPACK_CACHE_DIR"] = str(tmp_path / "cache")
    svc = start_service(env)
    request = {"title": "Binder check", "catalogs": [{"name": "t", "rows": [{"a": 1}, {"a": 2}]}]}
    status, first = _call(svc.url, "POST", "/api/v1/bundles", request)
    assert status == 201, first
    status, second = _call(svc.url, "POST", "/api/v1/bundles", request)  # same content, another handle
    assert status == 201 and second["id"] != first["id"]
    a = first["id"]

    # Two link sets of handle A with different lifetimes (so different read tokens), one of handle B.
    links_a1 = first["links"]
    links_a2 = _call(svc.url, "GET", f"/api/v1/bundles/{a}/links?expires_in=120")[1]["links"]
    links_b = second["links"]
    assert links_a1["launch"][HUB] != links_a2["launch"][HUB]  # the launch links themselves carry read tokens
    loc_a1, loc_a2, loc_b = (_binder_location(ls["launch"][HUB]) for ls in (links_a1, links_a2, links_b))
    a1, a2, b1 = (_image(binderhub, loc) for loc in (loc_a1, loc_a2, loc_b))

    # One handle: the same repository URL, commit, image and build name whichever link was clicked.
    assert a1 == a2
    # Another handle of the same content: another capability, so another image.
    assert a1["repo"] != b1["repo"] and a1["image"] != b1["image"] and a1["build"] != b1["build"]
    assert len(a1["ref"]) == 40 and a1["image"].endswith(":" + a1["ref"])
    # The repository URL is the handle's git capability: scope git, no expiry, no read token from any link.
    assert a1["repo"] == links_a1["git"]
    git_token = urlsplit(a1["repo"]).path.split("/")[2]
    assert links.check_token(SECRET, git_token, "git", a)["exp"] is None
    for ls in (links_a1, links_a2):
        read_token = parse_qs(urlsplit(ls["landing"]).query)["t"][0]
        assert read_token not in a1["repo"] and read_token not in a1["image"]
    assert parse_qs(a1["query"])["urlpath"] == ["lab/tree/" + unquote(_notebook(svc.url, a))]

    # Deleting the handle revokes the capability: BinderHub's own ls-remote can no longer resolve the ref
    # (a bookmarked BinderHub URL of A fails), while B is untouched.
    assert _call(svc.url, "DELETE", f"/api/v1/bundles/{a}")[0] in (200, 204)
    with pytest.raises(RuntimeError, match="git ls-remote"):
        _image(binderhub, loc_a1)
    assert _image(binderhub, loc_b)["image"] == b1["image"]


def _notebook(base: str, hid: str) -> str:
    return _call(base, "GET", f"/api/v1/bundles/{hid}")[1]["payload"]["notebook"]
