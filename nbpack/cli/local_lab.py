"""``nbpack serve``'s companions: the port is checked before anything is printed; JupyterLab on this computer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbpack.errors import InvalidInput

__all__ = ["local_lab", "check_port_free"]


def local_lab(cfg: Any, no_lab: bool) -> str:
    """Start (or attach to) JupyterLab on this computer (local mode); sets ``cfg.local_jupyter``; the line to print."""
    from nbpack.local import jupyter

    if cfg.local_jupyter:
        server = jupyter.parse_server_url(cfg.local_jupyter)
        return f"JupyterLab on this computer: {server.url}/lab (NBPACK_LOCAL_JUPYTER; it needs nbgitpuller)"
    if no_lab:
        return "JupyterLab on this computer: not started (--no-lab)"
    missing = jupyter.missing_for_launch()
    if missing:
        return (
            f"JupyterLab on this computer: not installed beside nbpack ({', '.join(missing)} missing), so landing pages"
            " have no 'Open in JupyterLab on this computer' button: pip install 'nbpack[local]'"
        )
    log = Path(cfg.storage_url.removeprefix("file://")) / "jupyter.log"
    server = jupyter.start_server(Path.cwd(), log)
    cfg.local_jupyter = server.as_setting()
    return f"JupyterLab on this computer: {server.url}/lab, serving {Path.cwd()} (log {log})"


def check_port_free(host: str, port: int) -> None:
    """Refuse a busy port before anything is printed (gunicorn would retry for 5 s, then exit with its own lines)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInput(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInput(f"port {port} is in use on {host}: stop what runs there or pick --port") from None
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
