"""Serve a stored bundle as a read-only git repository over smart HTTP.

A bundle zip becomes a bare repository holding one deterministic commit (same bundle, same sha), built once
into a local cache with ``git fast-import`` fed straight from the zip entry streams. Requests are answered by
``git http-backend`` (git's own smart-HTTP CGI): it is the server seen to handle nbgitpuller's ``--depth 1``
clone and the later fetch + merge, which dumb HTTP and dulwich did not.
"""

from __future__ import annotations

import fcntl
import http
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import parse_qs

from nbpack import ids
from nbpack.bundle import archive
from nbpack.bundle.remote import REMOTE_FILE, Remote
from nbpack.errors import Conflict, InvalidBundle, InvalidInput, NbpackError, NotFound, UnsafeArchive
from nbpack.gitenv import git_env
from nbpack.runtime.nbpack_runtime.vocab import MANIFEST

__all__ = ["build_repo", "ensure_repo", "http_backend", "make_wsgi_app", "refusal", "sweep_leftovers"]

log = logging.getLogger(__name__)

AUTHOR = b"nbpack <nbpack@invalid>"
CHUNK = 1 << 16
# Blobs above this are streamed to the pack by fast-import (not held in its memory) and never delta'd.
BIG_FILE_THRESHOLD = "--big-file-threshold=8m"
# Only what a clone/fetch needs; everything else (objects/*, receive-pack, ...) is refused before git runs.
_UPLOAD_PACK = "git-upload-pack"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate"}
_SAFE_PROTOCOL_RE = re.compile(r"^[A-Za-z0-9=:._-]*$")


# ---------------------------------------------------------------- building


def _entry_paths(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The file entries of the zip, refusing any name git or a checkout could be tricked by."""
    files: list[zipfile.ZipInfo] = []
    names: set[str] = set()
    for info in zf.infolist():
        name = archive.check_name(info.filename)  # the one rule for names; git adds .git, links, clashes
        parts = name.rstrip("/").split("/")
        if any(p.lower() == ".git" for p in parts):
            raise UnsafeArchive(f"unsafe zip entry name {name!r}: '.git' component")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"unsafe zip entry {name!r}: symbolic link")
        if info.is_dir():
            continue
        if name in names:
            raise UnsafeArchive(f"duplicate zip entry {name!r}")
        names.add(name)
        files.append(info)
    for name in names:
        # "a" and "a/b" cannot both be files in a git tree; one would silently vanish.
        prefix = name.split("/")[:-1]
        for i in range(1, len(prefix) + 1):
            if "/".join(prefix[:i]) in names:
                raise UnsafeArchive(f"zip entry {name!r} sits under another file entry")
    return files


def _manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    """The bundle manifest (``nbpack.json``), or ``{}`` when absent or unreadable."""
    try:
        with zf.open(MANIFEST) as fh:
            doc = json.loads(fh.read(1 << 20))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return {}
    return doc if isinstance(doc, dict) else {}


def _commit_time(created: Any) -> int:
    """Seconds since the epoch of the manifest's ``created``; 0 if missing or unparsable."""
    if not isinstance(created, str):
        return 0
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int(when.timestamp()))


def _quote_path(path: str) -> bytes:
    """A C-style quoted path as ``git fast-import`` reads it."""
    out = bytearray(b'"')
    for byte in path.encode("utf-8"):
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def _git(args: list[str], cwd: Path | None = None) -> str:
    """Run a git command that must succeed; its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise NbpackError(f"git {args[0]} failed: {proc.stderr.strip()[:300]}", code="git_failed")
    return proc.stdout.strip()


def _fast_import(
    zf: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    extra: dict[str, bytes],
    repo: Path,
    ref: str,
    ident: bytes,
    message: bytes,
) -> None:
    """Stream every entry (and the ``extra`` files) as a blob into ``git fast-import``; close with the one commit."""
    with tempfile.TemporaryFile() as err:
        # unpackLimit=0 keeps even tiny imports as one pack instead of loose objects.
        proc = subprocess.Popen(
            ["git", "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet", "--done", BIG_FILE_THRESHOLD],
            cwd=repo,
            env=git_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        assert proc.stdin is not None
        try:
            for mark, info in enumerate(entries, start=1):
                proc.stdin.write(b"blob\nmark :%d\ndata %d\n" % (mark, info.file_size))
                sent = 0
                with zf.open(info) as src:
                    while chunk := src.read(CHUNK):
                        sent += len(chunk)
                        if sent > info.file_size:
                            break
                        proc.stdin.write(chunk)
                if sent != info.file_size:
                    raise InvalidBundle(f"zip entry {info.filename!r} does not have its declared size")
                proc.stdin.write(b"\n")
            paths = [info.filename for info in entries]
            for name, data in sorted(extra.items()):
                proc.stdin.write(b"blob\nmark :%d\ndata %d\n%s\n" % (len(paths) + 1, len(data), data))
                paths.append(name)
            proc.stdin.write(
                b"commit %s\nauthor %s\ncommitter %s\ndata %d\n%s\n"
                % (ref.encode(), ident, ident, len(message), message)
            )
            for mark, path in enumerate(paths, start=1):
                proc.stdin.write(b"M 100644 :%d %s\n" % (mark, _quote_path(path)))
            proc.stdin.write(b"\ndone\n")
            proc.stdin.close()
            rc = proc.wait(timeout=600)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            proc.kill()
            proc.wait()
            if isinstance(exc, BrokenPipeError):
                err.seek(0)
                raise NbpackError(
                    f"git fast-import failed: {err.read(300).decode(errors='replace')}", code="git_failed"
                ) from exc
            raise InvalidBundle(f"cannot read bundle zip: {exc}") from exc
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            err.seek(0)
            raise NbpackError(f"git fast-import failed: {err.read(300).decode(errors='replace')}", code="git_failed")


def build_repo(
    bundle_zip: Path | BinaryIO,
    repo_dir: Path,
    *,
    branch: str = "main",
    remote: Remote | None = None,
    content_id: str | None = None,
) -> str:
    """Create a bare repo at ``repo_dir`` with one deterministic commit of the zip's entries; its sha.

    ``bundle_zip`` is a path or a seekable reader: only the central directory and the members that go into the
    tree are read. With ``remote``, catalogs of ``remote.min_bytes`` or more are left out and ``nbpack.remote.json``
    says where they are. With ``content_id``, the zip's manifest must carry that id (or none).
    """
    repo_dir = Path(repo_dir)
    if not re.match(r"^[A-Za-z0-9._/-]+$", branch) or _git_check_ref(branch):
        raise InvalidInput(f"invalid branch name {branch!r}")
    name = bundle_zip.name if isinstance(bundle_zip, Path) else "stored bundle"
    try:
        zf = zipfile.ZipFile(bundle_zip)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidBundle(f"not a readable zip: {name}") from exc
    with zf:
        entries = sorted(_entry_paths(zf), key=lambda i: i.filename)
        manifest = _manifest(zf)
        if content_id is not None and manifest.get("id") not in (None, content_id):
            raise InvalidBundle(f"{name} holds a manifest with id {manifest.get('id')!r}, not {content_id}")
        extra: dict[str, bytes] = {}
        if remote is not None:
            lazy = remote.lazy_paths(manifest, {i.filename: i.file_size for i in entries})
            if lazy:
                # The service's own document wins over any file of that name a pushed zip may carry.
                entries = [i for i in entries if i.filename not in lazy and i.filename != REMOTE_FILE]
                extra[REMOTE_FILE] = remote.document(lazy)
        when = _commit_time(manifest.get("created"))
        title = manifest.get("title") if isinstance(manifest.get("title"), str) else ""
        bid = manifest.get("id") if isinstance(manifest.get("id"), str) else ""
        message = f"{title or 'nbpack bundle'}\n\nnbpack bundle {bid or 'without id'}\n".encode()
        ident = b"%s %d +0000" % (AUTHOR, when)
        repo_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = repo_dir.parent / f".{repo_dir.name}.tmp-{uuid.uuid4().hex}"
        try:
            _git(["init", "--quiet", "--bare", "--template=", f"--initial-branch={branch}", str(tmp)])
            for key, value in [
                ("http.receivepack", "false"),  # read-only even if a REMOTE_USER ever reaches git
                ("uploadpack.allowFilter", "true"),  # partial clones (repo2docker, big bundles)
                ("gc.auto", "0"),
            ]:
                _git(["config", key, value], cwd=tmp)
            _fast_import(zf, entries, extra, tmp, f"refs/heads/{branch}", ident, message)
            sha = _git(["rev-parse", f"refs/heads/{branch}"], cwd=tmp)
            return _publish(tmp, repo_dir, sha, branch)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _git_check_ref(branch: str) -> bool:
    """True when git refuses ``branch`` as a branch name."""
    proc = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], env=git_env(), capture_output=True, timeout=30
    )
    return proc.returncode != 0


def _publish(tmp: Path, repo_dir: Path, sha: str, branch: str) -> str:
    """Rename the finished repo into place unless another builder got there first (then it must agree)."""
    try:
        os.rename(tmp, repo_dir)  # atomic; fails on a non-empty target, i.e. a finished repo
        return sha
    except OSError:
        if not repo_dir.is_dir():
            raise
    existing = _git(["rev-parse", f"refs/heads/{branch}"], cwd=repo_dir)
    if existing != sha:
        raise Conflict(f"repository {repo_dir.name} already exists with another commit ({existing[:12]})")
    return sha


def ensure_repo(
    open_bundle: Callable[[], BinaryIO],
    bundle_id: str,
    cache_dir: Path,
    *,
    content_id: str | None = None,
    remote: Remote | None = None,
) -> Path:
    """The cached repo ``cache_dir/git/<bundle_id>.git``, built from ``open_bundle()`` when missing.

    ``bundle_id`` names the cache entry (a handle id); the zip's manifest must carry ``content_id`` (default: the
    same). A seekable ``open_bundle()`` is read in place (only what the tree needs); another stream is spooled to a
    temporary file first. ``remote``: see ``build_repo``.
    """
    # Content ids (b-) and handle ids (h-): the cache is keyed by handle, since each handle's nbpack.json differs.
    if not ids.is_id(bundle_id, ids.CONTENT + ids.HANDLE):
        raise InvalidInput(f"invalid bundle id {bundle_id!r}")
    git_dir = Path(cache_dir) / "git"
    repo = git_dir / f"{bundle_id}.git"
    if repo.is_dir():
        return repo
    git_dir.mkdir(parents=True, exist_ok=True)
    # One builder per bundle; the others wait here instead of reading the same parts in parallel.
    with open(git_dir / f"{bundle_id}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if repo.is_dir():
            return repo
        # Holding the lock, any leftover temp for this bundle is from a builder that died mid-way.
        _remove_leftovers(git_dir, bundle_id)
        src = open_bundle()
        try:
            if _seekable(src):
                # zipfile takes a short read of a header for a truncated zip: a raw reader gets a buffer that refills.
                reader = io.BufferedReader(src, CHUNK) if isinstance(src, io.RawIOBase) else src
                build_repo(reader, repo, remote=remote, content_id=content_id or bundle_id)
                return repo
            with tempfile.NamedTemporaryFile(dir=git_dir, prefix=f".{bundle_id}-", suffix=".zip") as tmp:
                shutil.copyfileobj(src, tmp, CHUNK)
                tmp.flush()
                if not zipfile.is_zipfile(tmp.name):
                    raise InvalidBundle(f"stored bundle {bundle_id} is not a zip")
                build_repo(Path(tmp.name), repo, remote=remote, content_id=content_id or bundle_id)
        finally:
            src.close()
    return repo


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _remove_leftovers(git_dir: Path, bundle_id: str) -> None:
    """Delete the temp repo and temp zip of a build of ``bundle_id``; the caller holds that bundle's lock."""
    for stale in [*git_dir.glob(f".{bundle_id}.git.tmp-*"), *git_dir.glob(f".{bundle_id}-*.zip")]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def sweep_leftovers(cache_dir: Path) -> list[str]:
    """Remove what builders killed mid-way left in ``cache_dir/git`` (a temp repo, a whole temp copy of the zip).

    A builder holds its bundle's lock for the whole build, so leftovers whose lock can be taken at once belong to
    a dead process, whichever worker or replica shares this cache; a live build is left alone. The ids swept.
    """
    git_dir = Path(cache_dir) / "git"
    if not git_dir.is_dir():
        return []
    swept = []
    pattern = re.compile(rf"^\.({ids.pattern(ids.CONTENT + ids.HANDLE)})(?:\.git\.tmp-|-).*")
    for bundle_id in sorted({m.group(1) for p in git_dir.iterdir() if (m := pattern.match(p.name))}):
        with open(git_dir / f"{bundle_id}.lock", "wb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a build is running
            _remove_leftovers(git_dir, bundle_id)
            swept.append(bundle_id)
    return swept


# ---------------------------------------------------------------- serving


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


def _plain(status: str, message: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
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
        return _plain(*refused)
    if not (repo_path / "HEAD").is_file():
        return _plain("404 Not Found", "repository not found")
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
            return _plain("502 Bad Gateway", "git http-backend gave no answer")
        line = line.rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            status = value if " " in value else f"{code} {_phrase(code)}"
        elif name.lower() not in _HOP_BY_HOP:
            headers.append((name, value))
    return status, headers, body


def _phrase(code: str) -> str:
    """The reason phrase of an HTTP status code."""
    try:
        return http.HTTPStatus(int(code)).phrase
    except ValueError:
        return "Unknown"


# ---------------------------------------------------------------- a minimal app


def make_wsgi_app(
    cache_dir: Path,
    open_bundle_by_id: Callable[[str], BinaryIO],
    remote_for: Callable[[str], Remote | None] = lambda _bid: None,
) -> Callable:
    """A WSGI app serving ``/<bundle_id>.git/...`` read-only from ``cache_dir`` (no auth: tests, benchmarks).

    ``remote_for(bundle_id)``: what that bundle's tree leaves out (see ``build_repo``); default nothing.
    """
    route = re.compile(rf"^/({ids.pattern(ids.CONTENT + ids.HANDLE)})\.git(/.*)$")

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = route.match(environ.get("PATH_INFO", ""))
        if not match:
            status, headers, body = _plain("404 Not Found", "not found")
        else:
            bid, rest = match.groups()
            refused = refusal(environ.get("REQUEST_METHOD", "GET"), rest, environ.get("QUERY_STRING", ""))
            if refused:
                status, headers, body = _plain(*refused)
            else:
                try:
                    repo = ensure_repo(lambda: open_bundle_by_id(bid), bid, cache_dir, remote=remote_for(bid))
                except NotFound as exc:
                    status, headers, body = _plain("404 Not Found", str(exc))
                except NbpackError as exc:
                    code = str(exc.http_status)
                    status, headers, body = _plain(f"{code} {_phrase(code)}", str(exc))
                else:
                    status, headers, body = http_backend(environ, repo, rest)
        start_response(status, headers)
        return body

    return app
