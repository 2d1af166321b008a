"""server/notebook.py: ``links.notebook`` serves the handle's notebook alone, named after its file, readable from
any origin (the URL is the capability), never cached, and only under its own name and the handle's git token."""

# ruff: noqa: F811 - the tests take the imported fixtures (app, client, bundle) as arguments of the same names
from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.api_helpers import H, app, bundle, client  # noqa: F401 - fixtures: the module-wide app and its bundle


def _path(link: str) -> str:
    return link.removeprefix("http://localhost")


def test_the_lone_notebook_is_served_with_where_its_bundle_is(client: FlaskClient, bundle: dict) -> None:
    link = bundle["links"]["notebook"]
    resp = client.get(_path(link))
    assert resp.status_code == 200 and resp.mimetype == "application/x-ipynb+json"
    name = link.rsplit("/", 1)[-1]
    assert name in resp.headers["Content-Disposition"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cache-Control"] == "private, no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    nb = json.loads(resp.data)
    remote = nb["metadata"]["nbpack"]["remote"]
    assert remote["files"] == bundle["links"]["files"] and nb["metadata"]["nbpack"]["bundle_id"] == bundle["content_id"]


def test_another_name_is_a_404_naming_the_notebook(client: FlaskClient, bundle: dict) -> None:
    link = bundle["links"]["notebook"]
    name = link.rsplit("/", 1)[-1]
    resp = client.get(_path(link.rsplit("/", 1)[0] + "/other.ipynb"))
    assert resp.status_code == 404 and name in resp.get_json()["message"]


def test_a_read_token_or_a_forged_one_does_not_open_it(client: FlaskClient, bundle: dict) -> None:
    link = bundle["links"]["notebook"]
    prefix, git_token, bid, name = link.rsplit("/", 3)
    read_token = bundle["links"]["landing"].split("?t=", 1)[1]
    for token in (read_token, git_token[:-2] + "xx"):
        resp = client.get(_path(f"{prefix}/{token}/{bid}/{name}"), headers={"Accept": "application/json"})
        assert resp.status_code == 403 and resp.get_json()["error"].startswith("token_")
