"""server/errors.py: every error is ``{"error", "message"}`` JSON, except a browser route asked for by a browser,
which gets a page; an unexpected exception is a logged 500 that says nothing of its cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed

from nbpack.errors import Forbidden, InvalidInput
from server import errors

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TEMPLATES = Path(errors.__file__).parent / "templates"


@pytest.fixture
def client() -> FlaskClient:
    app = Flask("errors_test", template_folder=str(TEMPLATES))
    errors.init_app(app)

    @app.get("/b/<bid>")
    def landing(bid: str) -> str:
        raise Forbidden("token has expired <script>", code="token_expired")

    @app.get("/api/v1/x")
    def api() -> str:
        raise InvalidInput("bad 'x', é")

    @app.get("/api/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret=hunter2 in a traceback")

    @app.get("/b/boom/<bid>")
    def page_boom(bid: str) -> str:
        raise MethodNotAllowed()

    return app.test_client()


def test_the_api_answers_json_even_to_a_browser(client: FlaskClient) -> None:
    resp = client.get("/api/v1/x", headers=BROWSER)
    assert resp.status_code == 400 and resp.is_json
    assert resp.get_json() == {"error": "invalid_input", "message": "bad 'x', é"}
    assert "Vary" not in resp.headers


def test_a_browser_on_a_browser_route_gets_a_page_with_advice(client: FlaskClient) -> None:
    resp = client.get("/b/h-1", headers=BROWSER)
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "This link has expired" in page and "Ask ESAP" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # the message is escaped
    assert resp.headers["Vary"] == "Accept" and resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer" and "Content-Security-Policy" in resp.headers


@pytest.mark.parametrize("accept", ["application/json", "text/html;q=0.5,application/json", "*/*", ""])
def test_a_program_on_a_browser_route_gets_json(client: FlaskClient, accept: str) -> None:
    resp = client.get("/b/h-1", headers={"Accept": accept} if accept else {})
    assert resp.is_json and resp.get_json()["error"] == "token_expired"
    assert resp.headers["Vary"] == "Accept"  # the same URL answers a page to a browser: caches must know


def test_an_unexpected_error_is_a_500_that_hides_its_cause(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    resp = client.get("/api/v1/boom")
    assert resp.status_code == 500
    assert resp.get_json() == {
        "error": "internal_error",
        "message": "the service failed unexpectedly; the error was logged",
    }
    assert "hunter2" not in resp.get_data(as_text=True)
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)  # but it is logged


def test_werkzeug_errors_keep_their_status_with_a_code_name(client: FlaskClient) -> None:
    resp = client.post("/api/v1/x")
    assert resp.status_code == 405 and resp.get_json()["error"] == "method_not_allowed"
    page = client.get("/b/boom/h-1", headers=BROWSER)
    assert page.status_code == 405 and "The request could not be served" in page.get_data(as_text=True)
    assert client.get("/nowhere").get_json()["error"] == "not_found"
