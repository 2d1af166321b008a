"""nbpack/cli/service.py: ``serve`` refuses what it cannot run before it prints or execs anything (the exec of
gunicorn itself is tests/integration's), and ``gc`` prints its report as JSON."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbpack.cli.service import gc, serve
from nbpack.errors import InvalidInput
from tests.helpers import APP_SECRET


@pytest.fixture(autouse=True)
def _no_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    # Should serve get as far as exec, the test process must not become gunicorn.
    def refuse(*args: object) -> None:
        raise AssertionError(f"serve reached exec: {args[1]}")

    monkeypatch.setattr(os, "execve", refuse)
    for var in ("NBPACK_SECRET_KEY", "NBPACK_API_KEYS", "NBPACK_STORAGE", "NBPACK_PUBLIC_URL", "NBPACK_LOCAL_JUPYTER"):
        monkeypatch.delenv(var, raising=False)


def test_serve_refuses_a_busy_port_before_printing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            serve, ["--port", str(port), "--storage", str(tmp_path / "store"), "--no-demo", "--no-lab"]
        )
    assert isinstance(result.exception, InvalidInput) and f"port {port} is in use" in str(result.exception)
    assert result.output == ""


def test_serve_on_s3_without_api_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBPACK_SECRET_KEY", APP_SECRET)  # not local mode
    result = CliRunner().invoke(serve, ["--storage", "s3://bucket/prefix", "--no-demo", "--no-lab"])
    assert isinstance(result.exception, InvalidInput) and "set NBPACK_API_KEYS" in str(result.exception)


def test_gc_needs_a_secret_and_reports_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBPACK_STORAGE", str(tmp_path / "store"))
    refused = CliRunner().invoke(gc, ["--dry-run"])
    assert refused.exit_code != 0 and "NBPACK_SECRET_KEY is not set" in str(refused.exception)
    monkeypatch.setenv("NBPACK_SECRET_KEY", APP_SECRET)
    result = CliRunner().invoke(gc, ["--dry-run"])
    assert result.exit_code == 0, result.exception
    report = json.loads(result.output)
    assert report["dry_run"] is True
    assert set(report) >= {"dry_run", "handles", "returns", "blobs", "content", "cache", "idempotency"}
    assert all(not value for key, value in report.items() if key != "dry_run")  # an empty store: nothing to collect
