"""The URL layout has one definition (``links.public_url``): every link the service hands out, and every path the
Python client requests, is a route the app serves, to the view it is meant for.

The app's own URL map (its route decorators) is asked to match each URL, so a route renamed on one side only fails
here rather than in a user's browser or ESAP's backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from flask import Flask

from nbpack.client import Client
from nbpack.hub.links import public_url

BASE = "https://nbpack.example.org/sub"  # a service under a path: links keep it, routes see what follows
HID = "h-" + "0123456789abcdef01234567"
RID = "r-" + "89abcdef0123456789abcdef"
TOKEN = "eyJiIjoiaC0wMTIzIn0.c2lnbmF0dXJl"


def _match(app: Flask, url: str, method: str = "GET") -> tuple[str, dict[str, Any]]:
    path = urlsplit(url).path.removeprefix(urlsplit(BASE).path)
    return app.url_map.bind("nbpack.example.org").match(path, method=method)


@pytest.mark.parametrize(
    ("kind", "extra", "method", "endpoint", "args"),
    [
        ("landing", {}, "GET", "pages.landing", {"bid": HID}),
        ("download", {}, "GET", "pages.download", {"bid": HID}),
        (
            "launch",
            {"hub": "SURF/ASTRON JupyterHub"},
            "GET",
            "pages.launch",
            {"bid": HID, "hub": "SURF/ASTRON JupyterHub"},
        ),
        ("local", {}, "GET", "pages.launch_here", {"bid": HID}),
        ("files", {"path": "catalogs/a b,é.parquet"}, "GET", "git.member", {"path": "catalogs/a b,é.parquet"}),
        ("notebook", {"path": "analysis #1.ipynb"}, "GET", "notebook.lone_notebook", {"path": "analysis #1.ipynb"}),
        ("manifest", {}, "GET", "api.get_bundle", {"bid": HID}),
        ("returns", {}, "POST", "api.upload_return", {"bid": HID}),
        ("return", {"rid": RID}, "GET", "api.get_return", {"bid": HID, "rid": RID}),
    ],
)
def test_every_link_kind_is_a_route(app: Flask, kind: str, extra: dict, method: str, endpoint: str, args: dict) -> None:
    url = public_url(BASE, kind, HID, TOKEN, **extra)
    assert url.startswith(BASE + "/")
    found, values = _match(app, url.split("?")[0], method)
    assert found == endpoint
    assert {k: unquote(v) if isinstance(v, str) else v for k, v in values.items() if k in args} == args


def test_the_git_link_is_a_clone_url_the_smart_http_route_serves(app: Flask) -> None:
    url = public_url(BASE, "git", HID, TOKEN)
    for rest, method in (("/info/refs", "GET"), ("/git-upload-pack", "POST")):
        found, values = _match(app, url + rest, method)
        assert (found, values["bid"], values["token"]) == ("git.smart_http", HID, TOKEN)


class _Sent(BaseException):
    """Raised instead of sending: BaseException, so no retry loop of the client catches it."""


def test_every_client_call_is_a_route(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, str]] = []

    def record(self: Client, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, path))
        raise _Sent

    monkeypatch.setattr(Client, "_request", record)
    client = Client(BASE, "key")
    zip_path = tmp_path / "b.zip"
    zip_path.write_bytes(b"PK")
    calls = {
        "create": lambda: client.create({"title": "t"}),
        "push": lambda: client.push(zip_path),
        "list": lambda: client.list(),
        "extend": lambda: client.extend(HID, 3600),
        "get": lambda: client.get(HID),
        "links": lambda: client.links(HID),
        "hubs": lambda: client.hubs(HID),
        "delete": lambda: client.delete(HID),
        "download": lambda: client.download(HID, tmp_path / "d.zip"),
        "payloads": lambda: client.payloads(),
        "returns": lambda: client.returns(HID),
        "get_return": lambda: client.get_return(HID, RID),
        "download_return": lambda: client.download_return(HID, RID, tmp_path / "r.zip"),
        "return_file": lambda: client.return_file(HID, RID, "outputs/a b.csv", tmp_path / "f"),
        "return_html": lambda: client.return_html(HID, RID),
        "health": lambda: client.health(),
    }
    for name, call in calls.items():
        with pytest.raises(_Sent):
            call()
        method, path = sent[-1]
        found, _ = app.url_map.bind("nbpack.example.org").match(path.split("?")[0], method=method)
        assert found.startswith("api."), (name, path, found)
    assert len(sent) == len(calls)
