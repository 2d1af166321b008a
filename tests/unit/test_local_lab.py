"""nbpack/cli/local_lab.py: a busy port is refused before anything starts, and the Lab line says what happened
(starting a real Lab is tests/e2e's)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from nbpack.cli.local_lab import check_port_free, local_lab
from nbpack.errors import InvalidInput


def test_a_free_port_passes_and_a_listening_one_is_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        busy.listen()
        with pytest.raises(InvalidInput, match=f"port {port} is in use on 127.0.0.1"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # closed again: free


def test_an_unknown_host_is_a_clear_input_error() -> None:
    with pytest.raises(InvalidInput, match="--host no-such-host.invalid"):
        check_port_free("no-such-host.invalid", 8080)


def test_an_attached_lab_is_named_without_its_token(tmp_path: Path) -> None:
    cfg = SimpleNamespace(local_jupyter="http://127.0.0.1:8888/lab?token=secret-token", storage_url=str(tmp_path))
    line = local_lab(cfg, no_lab=False)
    assert line.startswith("JupyterLab on this computer: http://127.0.0.1:8888/lab (NBPACK_LOCAL_JUPYTER")
    assert "secret-token" not in line


def test_a_bad_attached_lab_url_is_refused() -> None:
    cfg = SimpleNamespace(local_jupyter="http://127.0.0.1:8888/lab", storage_url="/tmp")
    with pytest.raises(InvalidInput, match="with \\?token="):
        local_lab(cfg, no_lab=False)


def test_no_lab_starts_nothing(tmp_path: Path) -> None:
    cfg = SimpleNamespace(local_jupyter=None, storage_url=f"file://{tmp_path}")
    assert local_lab(cfg, no_lab=True) == "JupyterLab on this computer: not started (--no-lab)"
    assert cfg.local_jupyter is None and list(tmp_path.iterdir()) == []
