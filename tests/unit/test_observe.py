"""server/observe.py: request logs never hold a token (path or query), JSON log lines keep extra fields, and
/metrics is off on a hosted service unless asked for with its bearer token."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from server.observe import JsonFormatter, redact
from tests.helpers import APP_API_KEY, make_app


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/git/eyJ.sig/h-1.git/info/refs", "/git/REDACTED/h-1.git/info/refs"),
        ("/files/tok/h-1/catalogs/a.parquet", "/files/REDACTED/h-1/catalogs/a.parquet"),
        ("/nb/tok/h-1/my%20nb.ipynb", "/nb/REDACTED/h-1/my%20nb.ipynb"),
        ("/b/h-1?t=secret&x=1", "/b/h-1?t=REDACTED&x=1"),
        (
            "/api/v1/bundles?owner=a&callback_url=https%3A%2F%2Fu%3Apw%40cb.example%2F",
            "/api/v1/bundles?owner=a&callback_url=REDACTED",
        ),
        ("/api/v1/bundles?st=keep&t=", "/api/v1/bundles?st=keep&t="),  # nothing to hide; ``st`` is not ``t``
        ("/api/v1/health", "/api/v1/health"),
    ],
)
def test_redact_removes_every_token(path: str, expected: str) -> None:
    assert redact(path) == expected


def test_json_lines_carry_extra_fields_and_exceptions() -> None:
    logger = logging.getLogger("observe-test")
    record = logger.makeRecord(
        "observe-test", logging.WARNING, "f.py", 1, "hello %s", ("é",), None, extra={"n": 2**53 + 1}
    )
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "hello é" and doc["level"] == "warning" and doc["n"] == 2**53 + 1
    assert "args" not in doc and "msg" not in doc  # LogRecord's own fields are not repeated
    try:
        raise ValueError("why")
    except ValueError:
        failed = logger.makeRecord("observe-test", logging.ERROR, "f.py", 1, "x", (), sys.exc_info())
    assert "ValueError: why" in json.loads(JsonFormatter().format(failed))["exc"]


def test_metrics_are_off_without_a_token_on_a_hosted_service(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_exact_bearer_token_and_count_requests(tmp_path: Path) -> None:
    client = make_app(tmp_path, metrics_token="m-token").test_client()
    client.get("/api/v1/bundles", headers={"X-API-Key": APP_API_KEY})
    for wrong in ({}, {"Authorization": "Bearer m-toke"}, {"Authorization": "Bearer m-token2"}):
        assert client.get("/metrics", headers=wrong).status_code == 401
    resp = client.get("/metrics", headers={"Authorization": "Bearer m-token"})
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert 'nbpack_requests_total{endpoint="api.list_bundles",method="GET",status="200"} 1.0' in text
    assert "nbpack_webhook_pending" in text
