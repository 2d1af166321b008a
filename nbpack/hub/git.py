"""A stored bundle as a read-only git repository: built once per replica into the local cache.

A bundle zip becomes a bare repository holding one deterministic commit (same bundle, same sha), built with
``git fast-import`` fed straight from the zip entry streams; big catalogs can stay out of the tree (a thin clone,
``nbpack.remote.json``). Serving it over smart HTTP is ``git_http`` (the CGI bridge to ``git http-backend``).
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from nbpack import ids
from nbpack.bundle import archive
from nbpack.bundle.remote import REMOTE_FILE, Remote
from nbpack.errors import Conflict, InvalidBundle, InvalidInput, NbpackError, UnsafeArchive
from nbpack.gitenv import git_env
from nbpack.runtime.nbpack_runtime.vocab import MANIFEST

__all__ = ["build_repo", "ensure_repo", "sweep_leftovers"]

log = logging.getLogger(__name__)

AUTHOR = b"nbpack <nbpack@invalid>"
CHUNK = 1 << 16
# Blobs above this are streamed to the pack by fast-import (not held in its memory) and never delta'd.
BIG_FILE_THRESHOLD = "--big-file-threshold=8m"


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
