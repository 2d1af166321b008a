"""A built repository served over git's smart HTTP: the CGI bridge to ``git http-backend``.

``git http-backend`` (git's own smart-HTTP CGI) is the server seen to handle nbgitpuller's ``--depth 1`` clone and
the later fetch + merge, which dumb HTTP and dulwich did not. Only what a clone or fetch needs reaches it
(:func:`refusal` answers the rest); request and response bodies stream through, never held whole.
"""

from __future__ import annotations

import http
import io
import logging
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs

from nbpack.gitenv import git_env

__all__ = ["http_backend", "plain", "phrase", "refusal"]

log = logging.getLogger(__name__)

CHUNK = 1 << 16
# Only what a clone/fetch needs; everything else (objects/*, receive-pack, ...) is refused before git runs.
_UPLOAD_PACK = "git-upload-pack"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate"}
_SAFE_PROTOCOL_RE = re.compile(r"^[A-Za-z0-9=:._-]*$")


def refusal(method: str, path_info: str, query_string: str) -> tuple[str, str] | None:
    """Why a request is refused before git runs: ``(status, message)``, or None when it may proceed."""
    if path_info == "/info/refs":
        service = parse_qs(query_string).get("service", [""])[0]
        if service == "git-receive-pack":
            return "403 Forbidden", "read-only repository: push is not allowed"
        if service != _UPLOAD_PACK:
            return "404 Not Found", "only the smart HTTP protocol is served"
        return None if method in ("GET", "HEAD") else ("405 Method Not Allowed", "use GET")
    if path_info == "/git-receive-pack":
        return "403 Forbidden", "read-only repository: push is not allowed"
    if path_info == f"/{_UPLOAD_PACK}":
        return None if method == "POST" else ("405 Method Not Allowed", "use POST")
    if path_info == "/HEAD":
        return None if method in ("GET", "HEAD") else ("405 Method Not Allowed", "use GET")
    return "404 Not Found", "not found"


def plain(status: str, message: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
    """A short text response."""
    body = (message + "\n").encode()
    return status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))], [body]


def _cgi_env(environ: dict, repo_path: Path, path_info: str) -> dict[str, str]:
    """The CGI environment ``git http-backend`` reads, for one repository only."""
    env = git_env()
    env.update(
        {
            "GIT_PROJECT_ROOT": str(repo_path.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "PATH_INFO": f"/{repo_path.name}{path_info}",
            "REQUEST_METHOD": environ.get("REQUEST_METHOD", "GET"),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        }
    )
    length = environ.get("CONTENT_LENGTH", "")
    if length.strip().isdigit():
        env["CONTENT_LENGTH"] = length.strip()
    if environ.get("HTTP_CONTENT_ENCODING"):
        env["HTTP_CONTENT_ENCODING"] = environ["HTTP_CONTENT_ENCODING"]
    proto = environ.get("HTTP_GIT_PROTOCOL", "")
    if proto and _SAFE_PROTOCOL_RE.match(proto):
        env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"] = proto
    return env


def _feed(environ: dict, sink: IO[bytes]) -> None:
    """Copy the request body into git's stdin: CONTENT_LENGTH bytes, or to EOF when the server de-chunked."""
    source = environ.get("wsgi.input")
    try:
        length = environ.get("CONTENT_LENGTH", "").strip()
        if source is None:
            return
        if length.isdigit():
            left = int(length)
            while left > 0 and (chunk := source.read(min(CHUNK, left))):
                sink.write(chunk)
                left -= len(chunk)
        elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            while chunk := source.read(CHUNK):
                sink.write(chunk)
    except (BrokenPipeError, ValueError, OSError):
        pass  # git stopped reading (error or early answer); its own output tells the client
    finally:
        try:
            sink.close()
        except OSError:
            pass


def _drain(source: io.BufferedReader, keep: bytearray) -> None:
    """Read git's stderr to EOF so it never blocks, keeping the last few KiB for the log."""
    for line in iter(lambda: source.read1(CHUNK), b""):
        keep += line
        del keep[:-4096]


class _CgiBody:
    """The response body: git's stdout in chunks; closing it reaps (or kills) the process."""

    def __init__(self, proc: subprocess.Popen, threads: list[threading.Thread], errors: bytearray) -> None:
        self.proc, self.threads, self.errors = proc, threads, errors
        self.closed = self.finished = False

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self.proc.stdout, io.BufferedReader)
        while chunk := self.proc.stdout.read1(CHUNK):
            yield chunk
        self.finished = True

    def close(self) -> None:
        """Kill git if the client went away mid-stream, then reap it and its helper threads."""
        if self.closed:
            return
        self.closed = True
        if not self.finished and self.proc.poll() is None:
            self.proc.kill()  # output left unread: the client went away
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        for thread in self.threads:
            thread.join(timeout=10)
        if rc not in (0, -9):
            log.warning("git http-backend exited %s: %s", rc, bytes(self.errors).decode(errors="replace"))


def http_backend(environ: dict, repo_path: Path, path_info: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
    """Answer one smart-HTTP request for ``repo_path`` with ``git http-backend``: status, headers, body."""
    method = environ.get("REQUEST_METHOD", "GET")
    refused = refusal(method, path_info, environ.get("QUERY_STRING", ""))
    if refused:
        return plain(*refused)
    if not (repo_path / "HEAD").is_file():
        return plain("404 Not Found", "repository not found")
    proc = subprocess.Popen(
        ["git", "http-backend"],
        env=_cgi_env(environ, Path(repo_path), path_info),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    errors = bytearray()
    threads = [
        threading.Thread(target=_feed, args=(environ, proc.stdin), daemon=True, name="git-http-in"),
        threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True, name="git-http-err"),
    ]
    for thread in threads:
        thread.start()
    body = _CgiBody(proc, threads, errors)
    status, headers = "200 OK", []
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline(8192)
        if not line:  # no header block at all: git failed before answering
            body.close()
            return plain("502 Bad Gateway", "git http-backend gave no answer")
        line = line.rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            status = value if " " in value else f"{code} {phrase(code)}"
        elif name.lower() not in _HOP_BY_HOP:
            headers.append((name, value))
    return status, headers, body


def phrase(code: str) -> str:
    """The reason phrase of an HTTP status code."""
    try:
        return http.HTTPStatus(int(code)).phrase
    except ValueError:
        return "Unknown"
