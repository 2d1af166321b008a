"""nbpack/service/local.py: only a local-mode service with a Jupyter server opens bundles "on this computer"; its
link logs the browser in with that server's token and pulls this handle's repository."""

from __future__ import annotations

import socket
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from nbpack.config import Config
from nbpack.errors import InvalidInput, NotFound
from nbpack.service.local import lab_ready, local_launch_url, local_server
from tests.helpers import APP_SECRET
from tests.unit.test_launch import MANIFEST, _handle

LAB = "http://127.0.0.1:8888/lab?token=lab-secret"
GIT = "http://127.0.0.1:8080/git/tok/h-1.git"
CONFIG = Config(
    secret_key=[APP_SECRET], api_key_hashes=[], storage_url="memory://x", local_mode=True, local_jupyter=LAB
)


def test_only_local_mode_with_a_server_has_one() -> None:
    assert local_server(CONFIG) is not None and local_server(CONFIG).url == "http://127.0.0.1:8888"  # type: ignore[union-attr]
    assert local_server(replace(CONFIG, local_mode=False)) is None  # a hosted service never opens the host's Lab
    assert local_server(replace(CONFIG, local_jupyter=None)) is None


def test_the_local_link_carries_the_labs_token_and_this_repository(clock: object) -> None:
    handle = _handle()
    link = local_launch_url(CONFIG, handle, MANIFEST, GIT)
    parts = urlsplit(link)
    assert link.startswith("http://127.0.0.1:8888/git-pull?")
    query = parse_qs(parts.query)
    assert query["repo"] == [GIT] and query["token"] == ["lab-secret"]
    with pytest.raises(NotFound) as err:
        local_launch_url(replace(CONFIG, local_mode=False), handle, MANIFEST, GIT)
    assert err.value.code == "no_local_lab"


def test_a_bad_server_setting_is_an_input_error() -> None:
    with pytest.raises(InvalidInput, match="with \\?token="):
        local_server(replace(CONFIG, local_jupyter="http://127.0.0.1:8888/lab"))


def test_lab_ready_is_false_without_a_server_or_when_nothing_listens() -> None:
    assert lab_ready(replace(CONFIG, local_mode=False)) is False
    with socket.socket() as probe:  # a port that was free a moment ago: nothing answers there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert lab_ready(replace(CONFIG, local_jupyter=f"http://127.0.0.1:{port}/?token=t")) is False
