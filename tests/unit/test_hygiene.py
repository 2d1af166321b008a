"""Request hygiene in process: JSON bodies under the cap still work; a bad callback is refused by the create call
itself. The same limits on gunicorn are in tests/integration/test_hardening_hygiene.py."""

from __future__ import annotations

from pathlib import Path

from server import create_app
from tests.integration.test_direct_upload import KEY, _call, _setup, built  # noqa: F401 - fixture


def test_json_bodies_under_the_cap_still_work(tmp_path: Path) -> None:
    app = create_app(
        {
            "public_url": "http://localhost",
            "storage": str(tmp_path / "s"),
            "secret_key": "k" * 32,
            "api_keys": KEY,
            "cache_dir": str(tmp_path / "c"),
            "max_json_bytes": "2048",
        }
    )
    c = app.test_client()
    ok = c.post(
        "/api/v1/bundles",
        json={"title": "t", "catalogs": [{"name": "m", "rows": [{"k": 1}]}]},
        headers={"X-API-Key": KEY},
    )
    assert ok.status_code == 201, ok.get_json()
    big = c.post("/api/v1/bundles", json={"title": "t" * 3000}, headers={"X-API-Key": KEY})
    assert big.status_code == 413 and big.get_json()["error"] == "too_large"


def test_bad_callback_refused_by_the_create_call(tmp_path: Path) -> None:
    app = create_app(
        {
            "public_url": "http://localhost",
            "storage": str(tmp_path / "s"),
            "secret_key": "k" * 32,
            "api_keys": KEY,
            "cache_dir": str(tmp_path / "c"),
            "webhook_secret": "w" * 32,
        }
    )
    c = app.test_client()
    req = {"title": "t", "catalogs": [{"name": "m", "rows": [{"k": 1}]}]}
    bad = c.post(
        "/api/v1/bundles", json={**req, "callback_url": "http://esap.example.org/hook"}, headers={"X-API-Key": KEY}
    )
    assert bad.status_code == 400 and "callback_url must be https" in bad.get_json()["message"]
    assert not list((tmp_path / "s").glob("bundles/*"))
    good = c.post(
        "/api/v1/bundles", json={**req, "callback_url": "https://esap.example.org/hook"}, headers={"X-API-Key": KEY}
    )
    assert good.status_code == 201
