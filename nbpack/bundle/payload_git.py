"""Git payload resolution: pin a payload to a commit and gather its notebook, requirements and repo2docker files.

A git payload is resolved to a commit with ``git ls-remote`` on every call, so a moved branch changes new
bundles; the files a bundle needs are then cached per (repository URL, commit) under
``<cache_dir>/payloads/<urlhash>/<sha>/`` and never fetched again for that commit.

Errors about a payload's repository are ``InvalidInput`` with ``http_status`` 422 (the request was well formed
but names a payload that cannot be used) and one of the codes ``payload_address`` (a host nbpack must not
reach: ``payloads.fetch_args``), ``payload_unreachable``, ``payload_ref_not_found``, ``payload_not_notebook``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import yaml

from nbpack.bundle.payloads import Payload, check_filepath, check_ref, check_url, fetch_args
from nbpack.bundle.payloads import payload_error as _payload_error
from nbpack.errors import NbpackError, TooLarge, one_line
from nbpack.gitenv import SAFE_CONFIG_ARGS, git_env
from nbpack.netguard import AddressPolicy

__all__ = ["ResolvedPayload", "resolve_payload"]

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
MAX_EXTRA_FILE_BYTES = 256 * 1024
# Files repo2docker reads from its config folder (binder/, .binder/ or the root) that a bundle can ship.
REPO2DOCKER_FILES = ("apt.txt", "postBuild", "runtime.txt", "start", "install.R", "Project.toml", "DESCRIPTION")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class ResolvedPayload:
    """What a bundle needs from a payload: notebook bytes (None for a library set), software, provenance."""

    notebook: bytes | None
    notebook_name: str
    requirements: list[str]
    conda: list[str]
    extra_files: dict[str, bytes]
    source: dict[str, str]


def resolve_payload(
    payload: Payload, cache_dir: Path, *, policy: AddressPolicy | None = None, timeout: float = 30
) -> ResolvedPayload:
    """Pin a payload to a commit (git) and gather its notebook, requirements and repo2docker files.

    ``policy``: where its repository may be fetched from (default: public addresses only; see ``fetch_args``).
    """
    if payload.is_library_set:
        return ResolvedPayload(
            notebook=None,
            notebook_name=_slug(payload.name) + ".ipynb",
            requirements=_dedupe(payload.requirements),
            conda=_dedupe(payload.conda),
            extra_files={},
            source={},
        )
    check_url(payload.url)
    if payload.filepath:
        check_filepath(payload.name, payload.filepath)
    try:
        net = fetch_args(payload, policy or AddressPolicy())
        return _resolve_git(payload, Path(cache_dir), timeout, net)
    except NbpackError as err:
        # A token embedded in the repository URL must not reach the error shown to users.
        if _public_url(payload.url) != payload.url:
            userinfo = urlsplit(payload.url).netloc.rpartition("@")[0]
            err.message = err.message.replace(payload.url, _public_url(payload.url)).replace(userinfo, "***")
            err.args = (err.message,)
        raise


def _public_url(url: str) -> str:
    """The URL without user:password (what bundles and error messages may show)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _resolve_git(payload: Payload, cache_dir: Path, timeout: float, net: tuple[str, ...]) -> ResolvedPayload:
    # No filepath (an OSSR workflow ESAP names by its repository): the repository's notebook, found in its tree.
    filepath = posixpath.normpath(payload.filepath) if payload.filepath else ""
    sha = _resolve_ref(payload, timeout, net)
    entry = cache_dir / "payloads" / hashlib.sha256(payload.url.encode()).hexdigest()[:24] / sha
    meta = _read_meta(entry)
    if meta is not None and not filepath:
        filepath = _pick_notebook(payload, meta["tree"], sha)
    if meta is None or (filepath in meta["tree"] and not (entry / "files" / filepath).is_file()):
        filepath = _fetch_into_cache(payload, sha, filepath, entry, timeout, net)
        meta = _read_meta(entry)
        assert meta is not None  # written by _fetch_into_cache or it raised
    if filepath not in set(meta["tree"]):
        raise _payload_error(
            "payload_not_notebook", f"payload '{payload.name}': {filepath} is not in {payload.url} at {sha[:12]}"
        )
    files = entry / "files"
    notebook = (files / filepath).read_bytes()
    _check_notebook(payload.name, filepath, notebook)
    config = meta["config_dir"]
    requirements = list(payload.requirements)
    conda = list(payload.conda)
    req_path = files / config / "requirements.txt"
    if req_path.is_file():
        requirements += _parse_requirements(req_path.read_text("utf-8", errors="replace"))
    env_path = files / config / "environment.yml"
    if env_path.is_file():
        env_conda, env_pip = _parse_environment(payload.name, env_path.read_text("utf-8", errors="replace"))
        conda += env_conda
        requirements += env_pip
    extra = {rel: (files / rel).read_bytes() for rel in meta["extra"]}
    return ResolvedPayload(
        notebook=notebook,
        notebook_name=posixpath.basename(filepath),
        requirements=_dedupe(requirements),
        conda=_dedupe(conda),
        extra_files=extra,
        source={"url": _public_url(payload.url), "ref": payload.ref, "commit": sha, "filepath": filepath},
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "payload"


def _git(
    args: list[str], *, timeout: float, cwd: Path | None = None, net: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    """``net``: the flags of a command that connects (``fetch_args``: no redirects, the checked address)."""
    cmd = ["git", *SAFE_CONFIG_ARGS, *net, *args]
    return subprocess.run(cmd, cwd=cwd, env=git_env(inherit=True), capture_output=True, timeout=timeout, check=False)


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else f"git exited with {proc.returncode}"


def _resolve_ref(payload: Payload, timeout: float, net: tuple[str, ...]) -> str:
    ref = payload.ref or "HEAD"
    if _SHA_RE.match(ref):
        return ref  # already pinned; existence is checked by the fetch
    try:
        check_ref(payload.name, ref)
        proc = _git(["ls-remote", "--", payload.url, ref], timeout=timeout, net=net)
    except subprocess.TimeoutExpired:
        raise _payload_error(
            "payload_unreachable", f"payload '{payload.name}': {payload.url} did not answer within {timeout:g}s"
        ) from None
    if proc.returncode != 0:
        raise _payload_error(
            "payload_unreachable", f"payload '{payload.name}': cannot reach {payload.url}: {_stderr(proc)}"
        )
    refs: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        refs[name.strip()] = sha.strip()
    candidates = [ref] if ref == "HEAD" or ref.startswith("refs/") else []
    candidates += [f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"]
    for candidate in candidates:
        if candidate in refs and _SHA_RE.match(refs[candidate]):
            return refs[candidate]
    raise _payload_error(
        "payload_ref_not_found", f"payload '{payload.name}': ref '{ref}' does not exist in {payload.url}"
    )


def _read_meta(entry: Path) -> dict[str, Any] | None:
    try:
        return json.loads((entry / "meta.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _pick_notebook(payload: Payload, tree: Any, sha: str) -> str:
    """The notebook of a repository named without one: the shallowest ``.ipynb``, first by path on a tie."""
    notebooks = sorted((p for p in tree if p.endswith(".ipynb")), key=lambda p: (p.count("/"), p))
    if not notebooks:
        raise _payload_error(
            "payload_not_notebook", f"payload '{payload.name}': {payload.url} at {sha[:12]} holds no notebook"
        )
    return notebooks[0]


def _fetch_into_cache(
    payload: Payload, sha: str, filepath: str, entry: Path, timeout: float, net: tuple[str, ...]
) -> str:
    """Fetch exactly ``sha`` into a temporary bare repo and publish the needed files atomically; the notebook's
    path (``filepath``, or the one found when it is empty)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=entry.parent))
    try:
        repo = work / "repo.git"
        init = _git(["init", "--quiet", "--bare", "--", str(repo)], timeout=timeout)
        if init.returncode != 0:
            raise NbpackError(f"cannot create a git repository in the payload cache: {_stderr(init)}")
        _fetch_commit(payload, sha, repo, timeout, net)
        tree = _list_tree(repo, sha, timeout)
        filepath = filepath or _pick_notebook(payload, tree, sha)
        if filepath not in tree:
            raise _payload_error(
                "payload_not_notebook", f"payload '{payload.name}': {filepath} is not in {payload.url} at {sha[:12]}"
            )
        oid, size = tree[filepath]
        if size > MAX_NOTEBOOK_BYTES:
            raise TooLarge(f"payload '{payload.name}': {filepath} is larger than {MAX_NOTEBOOK_BYTES} bytes")
        notebook = _blob(repo, oid, timeout)
        _check_notebook(payload.name, filepath, notebook)
        config = _config_dir(tree)
        wanted = {filepath: notebook}
        extra: list[str] = []
        for rel, (blob_oid, blob_size) in tree.items():
            folder, base = posixpath.split(rel)
            if folder != config or blob_size > MAX_EXTRA_FILE_BYTES:
                continue
            if base in ("requirements.txt", "environment.yml"):
                wanted[rel] = _blob(repo, blob_oid, timeout)
            elif base in REPO2DOCKER_FILES or config:
                wanted[rel] = _blob(repo, blob_oid, timeout)
                extra.append(rel)
        meta = {
            "url": payload.url,
            "commit": sha,
            "config_dir": config,
            "extra": sorted(extra),
            "tree": sorted(tree),
        }
        if (entry / "meta.json").is_file():
            # Entry exists but lacks this notebook: add the file alone, atomically (content is fixed by sha).
            _write_file(entry / "files" / filepath, notebook)
            return filepath
        staged = work / "entry"
        for rel, data in wanted.items():
            _write_file(staged / "files" / rel, data)
        (staged / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
        try:
            staged.rename(entry)
        except OSError:
            if _read_meta(entry) is None:  # lost a race to a concurrent fetch is fine; anything else is not
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return filepath


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fetch_commit(payload: Payload, sha: str, repo: Path, timeout: float, net: tuple[str, ...]) -> None:
    check_ref(payload.name, payload.ref)
    attempts = [["fetch", "--quiet", "--no-tags", "--depth", "1", "--", payload.url, sha]]
    if not _SHA_RE.match(payload.ref):
        # Servers that refuse unadvertised objects: fetch the ref itself (it may have moved since ls-remote).
        attempts.append(["fetch", "--quiet", "--no-tags", "--depth", "1", "--", payload.url, payload.ref])
    attempts.append(
        ["fetch", "--quiet", "--", payload.url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    )
    for args in attempts:
        try:
            proc = _git(args, cwd=repo, timeout=timeout, net=net)
        except subprocess.TimeoutExpired:
            raise _payload_error(
                "payload_unreachable", f"payload '{payload.name}': fetching {payload.url} took over {timeout:g}s"
            ) from None
        if proc.returncode == 0 and _has_commit(repo, sha, timeout):
            return
    if proc.returncode != 0:  # even the full fetch failed: the server went away
        raise _payload_error(
            "payload_unreachable", f"payload '{payload.name}': cannot fetch {payload.url}: {_stderr(proc)}"
        )
    raise _payload_error(
        "payload_ref_not_found", f"payload '{payload.name}': commit {sha[:12]} is not in {payload.url}"
    )


def _has_commit(repo: Path, sha: str, timeout: float) -> bool:
    return _git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, timeout=timeout).returncode == 0


def _list_tree(repo: Path, sha: str, timeout: float) -> dict[str, tuple[str, int]]:
    proc = _git(["ls-tree", "-r", "-z", "--long", sha], cwd=repo, timeout=timeout)
    if proc.returncode != 0:
        raise NbpackError(f"cannot list commit {sha[:12]}: {_stderr(proc)}")
    tree: dict[str, tuple[str, int]] = {}
    for record in proc.stdout.split(b"\0"):
        if not record:
            continue
        info, _, path = record.partition(b"\t")
        mode, kind, oid, size = info.split()
        if kind == b"blob" and mode != b"120000":  # symlinks could point outside the repo
            tree[path.decode("utf-8", "replace")] = (oid.decode(), int(size))
    return tree


def _blob(repo: Path, oid: str, timeout: float) -> bytes:
    proc = _git(["cat-file", "blob", oid], cwd=repo, timeout=timeout)
    if proc.returncode != 0:
        raise NbpackError(f"cannot read object {oid[:12]}: {_stderr(proc)}")
    return proc.stdout


def _config_dir(tree: dict[str, tuple[str, int]]) -> str:
    """repo2docker reads binder/ (or .binder/) alone when it exists, else the repository root."""
    for folder in ("binder", ".binder"):
        if any(p.startswith(folder + "/") for p in tree):
            return folder
    return ""


def _check_notebook(name: str, filepath: str, data: bytes) -> None:
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises many types (JSON, validation, version) for one cause
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise _payload_error(
            "payload_not_notebook", f"payload '{name}': {filepath} is not a valid notebook: {reason}"
        ) from None


def _parse_requirements(text: str) -> list[str]:
    specs = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        # pip options (-r, -e, --index-url) refer to files or indexes the bundle does not carry.
        if line and not line.startswith(("#", "-")):
            specs.append(line)
    return specs


def _parse_environment(name: str, text: str) -> tuple[list[str], list[str]]:
    """Conda and pip specs from an environment.yml (at most MAX_EXTRA_FILE_BYTES: larger ones are never fetched)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _payload_error(
            "payload_invalid_environment", f"payload '{name}': environment.yml: {one_line(exc)}"
        ) from None
    deps = doc.get("dependencies") if isinstance(doc, dict) else None
    conda: list[str] = []
    pip: list[str] = []
    for dep in deps if isinstance(deps, list) else []:
        if isinstance(dep, str | int | float):
            conda.append(str(dep).strip())
        elif isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            pip += [str(p).strip() for p in dep["pip"] if not str(p).strip().startswith("-")]
    return [c for c in conda if c], [p for p in pip if p]


def _requirement_name(spec: str) -> str:
    spec = spec.split("::", 1)[-1]  # conda channel prefix
    match = _NAME_RE.match(spec)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else spec.strip().lower()


def _dedupe(specs: list[str]) -> list[str]:
    """Keep the first spec for each package name (the payload's own before the repository's)."""
    seen: set[str] = set()
    out = []
    for spec in specs:
        key = _requirement_name(spec)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out
