"""Where a payload may be fetched from (SSRF): a workflow a request names by URL makes the service run git against
that host, so the host is checked as a webhook's callback is (``nbpack.netguard``), the operator's
``NBPACK_PAYLOAD_ALLOW`` admits its own git hosts, git follows no redirect, and git connects to the checked
address. Real git against real HTTP servers on 127.0.0.1; the service is the Flask app (tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nbpack.bundle.payload_git import resolve_payload
from nbpack.bundle.payloads import Payload
from nbpack.errors import InvalidInput
from nbpack.netguard import AddressPolicy
from tests.helpers import APP_API_KEY, make_app
from tests.integration.test_payloads import _git, _notebook
from tests.unit.test_webhook import INTERNAL

HEADERS = {"X-API-Key": APP_API_KEY}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository served as plain files (git's dumb HTTP), as a GitLab-hosted workflow is reached."""
    base = tmp_path_factory.mktemp("served")
    work = base / "wf"
    work.mkdir()
    (work / "analysis.ipynb").write_bytes(_notebook("print('workflow')"))
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "workflow")
    _git(work, "update-server-info")
    return base


class _Counting(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]


@contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler], **kw: object) -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, **kw))
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _create(client, payload: object) -> tuple[int, dict]:  # noqa: ANN001 - Flask test client
    resp = client.post("/api/v1/bundles", json={"title": "wf", "payload": payload}, headers=HEADERS)
    return resp.status_code, resp.get_json()


@pytest.mark.parametrize("url", INTERNAL)
def test_a_workflow_on_an_internal_address_is_refused_in_every_spelling(client, url: str) -> None:  # noqa: ANN001
    status, body = _create(client, {"url": url, "filepath": "a.ipynb"})
    assert (status, body["error"]) == (422, "payload_address"), body
    assert "NBPACK_PAYLOAD_ALLOW" in body["message"] and "\n" not in body["message"]


def test_the_operator_allow_list_admits_its_git_host_and_nothing_else(repo: Path, tmp_path: Path) -> None:
    with _serve(_Counting, directory=str(repo)) as served:
        url = f"http://127.0.0.1:{served.server_address[1]}/wf/.git"
        # Unlisted: refused before git runs (the server sees no request), named by URL or given inline.
        plain = make_app(tmp_path / "plain").test_client()
        for payload in (url, {"url": url, "ref": "main", "filepath": "analysis.ipynb"}):
            status, body = _create(plain, payload)
            assert (status, body["error"]) == (422, "payload_address"), body
            assert "loopback" in body["message"]
        assert served.paths == []  # type: ignore[attr-defined]
        # Listed (by network): fetched; another private network stays refused.
        listed = make_app(tmp_path / "listed", payload_allow="127.0.0.0/8, git.cluster.svc").test_client()
        status, body = _create(listed, {"url": url, "ref": "main", "filepath": "analysis.ipynb"})
        assert status == 201, body
        assert served.paths  # type: ignore[attr-defined]
        status, body = _create(listed, {"url": "https://10.0.0.1/wf.git", "filepath": "a.ipynb"})
        assert (status, body["error"]) == (422, "payload_address")


def test_a_bad_allow_list_stops_the_service_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="NBPACK_PAYLOAD_ALLOW: item 2"):
        make_app(tmp_path, payload_allow="10.0.0.0/8,https://git.example.org/")


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(302)
        self.send_header("Location", self.server.target + self.path)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]


def test_a_redirect_is_not_followed(repo: Path, tmp_path: Path) -> None:
    """git follows a redirect of its first request by default, and would not check where it leads."""
    policy = AddressPolicy.parse("127.0.0.1", setting="NBPACK_PAYLOAD_ALLOW")
    with _serve(_Counting, directory=str(repo)) as inside, _serve(_Redirect) as hop:
        hop.target = f"http://127.0.0.1:{inside.server_address[1]}"  # type: ignore[attr-defined]
        payload = Payload.from_dict(
            {"name": "r", "url": f"http://127.0.0.1:{hop.server_address[1]}/wf/.git", "ref": "main"}, esap=True
        )
        with pytest.raises(InvalidInput) as err:
            resolve_payload(payload, tmp_path / "cache", policy=policy, timeout=20)
        assert err.value.code == "payload_unreachable"
        assert hop.paths and inside.paths == []  # type: ignore[attr-defined]
        # The same repository asked for directly resolves: the redirect alone was refused.
        direct = dataclasses.replace(payload, url=f"{hop.target}/wf/.git")  # type: ignore[attr-defined]
        assert resolve_payload(direct, tmp_path / "cache", policy=policy, timeout=20).notebook_name == "analysis.ipynb"


def test_git_connects_to_the_address_that_was_checked(repo: Path, tmp_path: Path) -> None:
    """The name resolves (for the check) to 127.0.0.1 only; git's own lookup could not resolve it (.invalid):
    the fetch works only because git is pinned to the checked address."""
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    policy = dataclasses.replace(AddressPolicy.parse("git.pinned.invalid", setting="t"), resolver=resolver)
    with _serve(_Counting, directory=str(repo)) as served:
        url = f"http://git.pinned.invalid:{served.server_address[1]}/wf/.git"
        payload = Payload.from_dict({"name": "p", "url": url, "ref": "main"}, esap=True)
        res = resolve_payload(payload, tmp_path / "cache", policy=policy, timeout=20)
    assert res.source["url"] == url and looked_up == ["git.pinned.invalid"]
    # Unlisted, the same answer is refused: the name resolves to loopback.
    with pytest.raises(InvalidInput) as err:
        resolve_payload(payload, tmp_path / "cache2", policy=AddressPolicy(resolver=resolver))
    assert err.value.code == "payload_address"


def test_credentials_in_a_refused_url_are_not_shown(tmp_path: Path) -> None:
    payload = Payload.from_dict({"name": "c", "url": "https://reader:s3cret@10.1.2.3/r.git", "filepath": "a.ipynb"})
    with pytest.raises(InvalidInput) as err:
        resolve_payload(payload, tmp_path)
    assert err.value.code == "payload_address" and err.value.http_status == 422
    assert "s3cret" not in json.dumps(err.value.to_json()) and "https://10.1.2.3/r.git" in err.value.message
