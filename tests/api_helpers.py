"""The in-process API's shared set-up for tests/unit/test_api.py and tests/integration/test_api.py: one app and
client per module over a local folder, one bundle made from inline rows, and helpers that create and forge tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer

from tests.helpers import make_app
from tests.openapi_check import check_response

SECRET = "s" * 32
KEY = "test-api-key-1"
H = {"X-API-Key": KEY}

ESAP_PAGE = {
    "requested_page": 1,
    "pages": 1,
    "count": 2,
    "results": [
        {
            "dataset": "gaia",
            "fields": [
                {"name": "id", "datatype": "long"},
                {"name": "mag", "datatype": "float"},
                {"name": "label", "datatype": "char"},
            ],
            "result": "1,2.5,ab",
        },
        {
            "dataset": "gaia",
            "fields": [
                {"name": "id", "datatype": "long"},
                {"name": "mag", "datatype": "float"},
                {"name": "label", "datatype": "char"},
            ],
            "result": "2,,cd",
        },
    ],
}


def api_app(root: Path) -> Flask:
    return make_app(root, secret_key=SECRET, api_keys=KEY)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """Module-wide (overrides tests/conftest.py's): one app, and in integration one executed kernel, per module."""
    return api_app(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def create(client: FlaskClient, body: dict, status: int | None = None) -> dict:
    resp = client.post("/api/v1/bundles", json=body, headers=H)
    doc = check_response(resp)
    if status is not None:
        assert resp.status_code == status, doc
    return doc


def token_of(link: str) -> str:
    return link.split("?t=", 1)[1]


def sign_token(scope: str, bid: str, exp: float, nonce: str | None = None) -> str:
    # Forged the way nbpack.hub.links signs, to craft tokens the API must refuse (expired, other bundle).
    ser = URLSafeSerializer(
        [SECRET],
        salt=f"nbpack.token.{scope}",
        signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
    )
    return ser.dumps({"b": bid, "s": scope, "exp": int(exp), **({"n": nonce} if nonce else {})})


@pytest.fixture(scope="module")
def bundle(client: FlaskClient) -> dict:
    """One bundle made from inline rows: the create answer."""
    return create(
        client,
        {
            "title": "Inline rows",
            "catalogs": [{"name": "sources", "rows": [{"id": 1, "ra": 10.5}, {"id": 2, "ra": 11.25}]}],
        },
        201,
    )
