"""What a person's browser gets: pages (not JSON) for every broken link, a home page, and a landing page that shows
one id, folds the bootstrap cell, has copy buttons, hides empty columns, prints numbers with separators, and (local
mode) opens the bundle in JupyterLab on this computer. Programs keep their JSON bodies."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path

import pyarrow as pa
import pytest
from flask import Flask
from flask.testing import FlaskClient

from nbpack import clock
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.hub import links
from tests.helpers import APP_API_KEY, APP_SECRET, make_app

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}
PROGRAM = {"Accept": "application/json"}
KEY = {"X-API-Key": APP_API_KEY}

HUBS = """
[[hubs]]
name = "Lab Hub"
url = "https://hub.invalid/"
launch = "nbgitpuller"

[[hubs]]
name = "Binder"
url = "https://binder.invalid/"
launch = "binderhub"
"""


def _store(client: FlaskClient, tmp_path: Path, rows: int = 3_000) -> dict:
    table = pa.table({"source_id": pa.array(range(rows), pa.int64()), "name": [f"star, {i} é" for i in range(rows)]})
    bundle = tmp_path / "b.zip"
    spec = BuildSpec(title="Awkward stars", catalogs=[CatalogInput("stars", table)])
    spec.files = [{"name": "spec", "uri": "https://example.org/spec.fits", "size": 10}]
    build_bundle(spec, bundle)
    resp = client.post("/api/v1/bundles", data=bundle.read_bytes(), headers={**KEY, "Content-Type": "application/zip"})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _path(url: str) -> str:
    return url[url.index("/", url.index("//") + 2) :]


def _page(resp) -> str:  # noqa: ANN001 - werkzeug test response
    assert resp.mimetype == "text/html", resp.get_data(as_text=True)[:300]
    return resp.get_data(as_text=True)


@pytest.fixture
def hub_app(tmp_path: Path) -> Flask:
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(HUBS)
    return make_app(tmp_path, hubs_file=str(hubs))


def test_broken_links_answer_a_page_for_people_and_json_for_programs(
    hub_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = hub_app.test_client()
    stored = _store(client, tmp_path)
    bid, landing = stored["id"], _path(stored["links"]["landing"])
    nonce = hub_app.extensions["nbpack"].handles.load(bid).nonce
    real = time.time
    with clock.use(lambda: real() - 3 * 86400):  # a token made three days ago
        expired = links.make_token(APP_SECRET, "read", bid, 60, nonce)
    when = time.strftime("%Y-%m-%d", time.gmtime(real() - 3 * 86400))
    token = landing.split("?t=")[1]

    cases = {
        f"/b/{bid}?t={expired}": (403, "token_expired", "This link has expired", f"expired on {when}"),
        f"/b/{bid}?t={token[:-4]}AAAA": (403, "token_invalid", "This link is not valid", "Ask ESAP"),
        f"/b/{bid}": (403, "token_missing", "This link is incomplete", "?t="),
        f"/b/h-{'0' * 24}?t={token}": (403, "token_bundle", "This link is for another bundle", "Ask ESAP"),
        f"/b/{bid}/launch/Nowhere?t={token}": (404, "not_found", "Not found", "no hub named &#39;Nowhere&#39;"),
        f"/b/{bid}/download?t={expired}": (403, "token_expired", "This link has expired", "new one"),
        f"/nb/{token}/{bid}/x.ipynb": (403, "token_scope", "This link is for something else", "Ask ESAP"),
        "/b/": (404, "not_found", "Not found", "link you were given"),
    }
    for url, (status, code, heading, words) in cases.items():
        page = client.get(url, headers=BROWSER)
        assert page.status_code == status, url
        html = _page(page)
        assert f'<h1 id="error-heading">{heading}</h1>' in html and words in html, (url, html)
        assert f'data-error="{code}"' in html and "<script" not in html
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        answer = client.get(url, headers=PROGRAM)
        assert answer.status_code == status and answer.get_json()["error"] == code, url
        assert client.get(url).is_json, url  # no Accept header at all (curl, urllib): JSON

    # Revoked: the handle was deleted; its old link says so.
    assert client.delete(f"/api/v1/bundles/{bid}", headers=KEY).status_code == 204
    html = _page(client.get(landing, headers=BROWSER))
    assert "This link was revoked" in html and "Ask ESAP" in html
    # API routes stay JSON even for a browser.
    api = client.get(f"/api/v1/bundles/{bid}", headers={**BROWSER})
    assert api.status_code == 401 and api.is_json


def test_home_page_says_what_the_service_is(client: FlaskClient) -> None:
    html = _page(client.get("/", headers=BROWSER))
    assert "Notebook bundles between ESAP and Jupyter" in html and "/api/v1" in html
    doc = client.get("/", headers=PROGRAM).get_json()
    assert doc["service"] == "nbpack" and doc["api"] == "/api/v1"
    assert client.get("/nowhere", headers=BROWSER).is_json  # not a browser route: programs' JSON


def test_landing_page_one_id_folded_bootstrap_copy_buttons_and_tidy_tables(hub_app: Flask, tmp_path: Path) -> None:
    client = hub_app.test_client()
    stored = _store(client, tmp_path)
    resp = client.get(_path(stored["links"]["landing"]), headers=BROWSER)
    html = _page(resp)
    # One id: the handle in the header; the content id only as such.
    assert f'<code id="bundle-id">{stored["id"]}</code>' in html
    assert f'<code id="content-id">{stored["content_id"]}</code>' in html
    assert html.count(stored["content_id"]) == 1
    # The bootstrap cell is folded; the user's first cell is not.
    assert re.search(r'<details class="folded"><summary>nbpack bootstrap: loads the bundle</summary>', html)
    # Copy buttons, and the one script that drives them is allowed by its hash and nothing else.
    for target in ("git-url", "notebook-url", "download-url"):
        assert f'data-copy="{target}"' in html and f'id="{target}"' in html
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script is not None and html.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in resp.headers["Content-Security-Policy"]
    # Numbers with separators; no empty columns (no file has a site or checksums).
    assert '<td class="rows num">3,000</td>' in html
    assert "<th>checksums</th>" not in html and "<th>site</th>" not in html
    # A heading true to what is listed: a BinderHub is no JupyterHub.
    assert "JupyterHubs and BinderHubs that can run it, best first" in html
    # Not local mode: no returns section, no button into a Lab on this computer.
    assert 'id="returns"' not in html and 'id="open-here"' not in html


def test_local_mode_opens_the_bundle_in_jupyterlab_on_this_computer_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import create_app, pages

    lab = "http://127.0.0.1:8899/?token=lab-secret"
    app = create_app(
        {
            "TESTING": True,
            "public_url": "http://127.0.0.1:8080",
            "storage": str(tmp_path / "store"),
            "secret_key": APP_SECRET,
            "api_keys": APP_API_KEY,
            "local_jupyter": lab,
        },
        local_mode=True,
    )
    client = app.test_client()
    stored = _store(client, tmp_path, rows=5)
    html = _page(client.get(_path(stored["links"]["landing"]), headers=BROWSER))
    here = re.search(r'<a class="button" id="open-here" href="([^"]+)">Open in JupyterLab on this computer</a>', html)
    assert here is not None and "lab-secret" not in html  # the Lab token is never on the page
    assert 'id="no-returns"' in html  # local mode lists returns: none yet
    local = _path(here.group(1).replace("&amp;", "&"))
    # Nothing listens on :8899 yet (JupyterLab takes seconds to start): a page that tries again, no token in it.
    starting = client.get(local, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert starting.status_code == 503 and starting.headers["Retry-After"] == "2"
    assert '<meta http-equiv="refresh" content="2">' in _page(starting) and "lab-secret" not in _page(starting)
    monkeypatch.setattr(pages, "lab_ready", lambda config: True)
    resp = client.get(local, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert resp.status_code == 302
    target = resp.headers["Location"]
    assert target.startswith("http://127.0.0.1:8899/git-pull?repo=http%3A%2F%2F127.0.0.1%3A8080%2Fgit%2F")
    assert f"{stored['id']}.git" in target and target.endswith("&token=lab-secret")
    assert "urlpath=lab%2Ftree%2F" in target and resp.headers["Referrer-Policy"] == "no-referrer"
    # Another machine holding the landing link gets no token for this computer's Lab.
    far = client.get(local, headers=BROWSER, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert far.status_code == 403 and "lab-secret" not in far.get_data(as_text=True)


def test_jupyter_setting_is_ignored_outside_local_mode(tmp_path: Path) -> None:
    app = make_app(tmp_path, local_jupyter="http://127.0.0.1:8899/?token=lab-secret")
    client = app.test_client()
    stored = _store(client, tmp_path, rows=5)
    html = _page(client.get(_path(stored["links"]["landing"]), headers=BROWSER))
    assert 'id="open-here"' not in html and 'id="no-lab"' not in html
    bid = stored["id"]
    token = stored["links"]["landing"].split("?t=")[1]
    assert client.get(f"/b/{bid}/local?t={token}", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404
