"""Rucio reads: its REST API over urllib (resolve DIDs, list replicas); the rucio client only when installed
and REST is not configured."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .base import NETWORK_ERRORS, SCHEMES, TIMEOUT, Transient, with_retries
from .checksums import verify_part
from .display import need
from .errors import ChecksumMismatch, FetchError, RuntimeProblem
from .fetch import fetch_into_cache
from .refs import FileRef, cache_dir, cache_path

RUCIO_MAX_FILES = 100_000  # a collection listing longer than this is refused before it fills memory
RUCIO_MAX_LINE = 1 << 20  # one replica record, or one error body


class RucioRefused(FetchError):
    """Rucio answered 4xx; ``status`` and Rucio's ``ExceptionClass`` let callers tell 404/409 apart."""

    def __init__(self, message: str, status: int, exc_class: str, location: str = "") -> None:
        super().__init__(message)
        self.status, self.exc_class, self.location = status, exc_class, location


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the redirect surfaces as an HTTPError: a token never follows it to another host


RUCIO_OPENER = urllib.request.build_opener(_NoRedirect)


def rucio_host() -> str | None:
    """``RUCIO_HOST``: only the hub's environment says where the Rucio token may go, never the bundle manifest."""
    host = os.environ.get("RUCIO_HOST", "").strip().rstrip("/")
    if host and urllib.parse.urlsplit(host).scheme != "https":
        raise FetchError(f"RUCIO_HOST must be an https:// URL (the token would travel in clear to {host})")
    return host or None


def rucio_token() -> str | None:
    if os.environ.get("RUCIO_ACCESS_TOKEN"):
        return os.environ["RUCIO_ACCESS_TOKEN"].strip()
    path = os.environ.get("RUCIO_TOKEN_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def did_path(did: str) -> str:
    scope, name = did.split(":", 1)
    return f"{urllib.parse.quote(scope, safe='')}/{urllib.parse.quote(name, safe='')}"


def _rucio_exception(err: urllib.error.HTTPError) -> tuple[str, str]:
    """Rucio's ``ExceptionClass`` and ``ExceptionMessage`` from an error answer (headers or JSON body)."""
    exc_class, message = err.headers.get("ExceptionClass") or "", err.headers.get("ExceptionMessage") or ""
    try:
        body = json.loads(err.read(RUCIO_MAX_LINE).decode(errors="replace"))
        exc_class, message = body.get("ExceptionClass") or exc_class, body.get("ExceptionMessage") or message
    except (ValueError, AttributeError, OSError):
        pass
    return exc_class or err.reason or "", message[:300]


def _rucio_open(
    host: str, token: str, method: str, path: str, body: Any = None, accept: str = "application/json"
) -> Any:
    """Open one Rucio REST call: bounded retries on 5xx and network errors, a one-line error on 4xx."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-Rucio-Auth-Token": token, "Accept": accept}
    if data is not None:
        headers["Content-Type"] = "application/json"

    def attempt() -> Any:
        req = urllib.request.Request(host + path, data=data, method=method, headers=headers)
        try:
            return RUCIO_OPENER.open(req, timeout=TIMEOUT)
        except urllib.error.HTTPError as err:
            exc_class, message = _rucio_exception(err)
            if err.code == 401:
                raise RucioRefused(
                    f"Rucio at {host} refused the token (HTTP 401 {exc_class}: {message}); it is expired or invalid: "
                    "set a fresh one in RUCIO_ACCESS_TOKEN or RUCIO_TOKEN_FILE",
                    401,
                    exc_class,
                ) from None
            if err.code < 500:
                raise RucioRefused(
                    f"Rucio at {host} answered {method} {path} with HTTP {err.code} {exc_class}: {message}",
                    err.code,
                    exc_class,
                    err.headers.get("Location") or "",
                ) from None
            raise Transient(f"HTTP {err.code} {exc_class}: {message}") from None
        except NETWORK_ERRORS as err:
            raise Transient(str(getattr(err, "reason", err))) from None

    return with_retries(f"Rucio at {host}: {method} {path}", attempt)


def rucio_json(host: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One Rucio call whose answer is a JSON document (or ``Created``)."""
    with _rucio_open(host, token, method, path, body) as resp:
        text = resp.read(RUCIO_MAX_LINE).decode(errors="replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text


def rucio_replicas(host: str, token: str, did: str) -> list[dict]:
    """``GET /replicas/{scope}/{name}``: one record per file, the DID's own for a file, each of its files' for a
    dataset or container (every record then carries that file's own scope and name)."""
    records: list[dict] = []
    try:
        with _rucio_open(host, token, "GET", f"/replicas/{did_path(did)}", accept="application/x-json-stream") as resp:
            while line := resp.readline(RUCIO_MAX_LINE + 1):
                if len(line) > RUCIO_MAX_LINE:
                    raise FetchError(f"{did}: Rucio sent a replica record over {RUCIO_MAX_LINE} bytes")
                if line.strip():
                    records.append(json.loads(line))
                    if len(records) > RUCIO_MAX_FILES:
                        raise FetchError(f"{did}: Rucio lists more than {RUCIO_MAX_FILES} files")
    except (OSError, ValueError) as err:
        raise FetchError(f"{did}: Rucio at {host} sent an unreadable replica list ({err})") from None
    if not records:
        raise _rucio_nothing(host, token, did)
    return records


def _rucio_nothing(host: str, token: str, did: str) -> FetchError:
    # An unknown DID and a DID without available replicas both answer 200 with no line: ask which it is.
    try:
        kind = (rucio_json(host, token, "GET", f"/dids/{did_path(did)}") or {}).get("type") or "DID"
    except RucioRefused as err:
        if err.status == 404:
            return FetchError(f"{did}: no such DID in Rucio at {host} ({err.exc_class})")
        return err
    return FetchError(f"{did}: Rucio at {host} knows this {kind.lower()} but lists no available replica of it")


def _order_replicas(record: dict) -> list[tuple[str, str]]:
    """(pfn, rse) pairs: RSEs in ``NBPACK_LOCAL_RSES`` first, then the rest by Rucio's priority."""
    local = [r.strip() for r in os.environ.get("NBPACK_LOCAL_RSES", "").split(",") if r.strip()]
    pairs = []
    for pfn, info in (record.get("pfns") or {}).items():
        pairs.append((pfn, info.get("rse", ""), info.get("priority", 999)))
    if not pairs:
        for rse, pfns in (record.get("rses") or {}).items():
            pairs.extend((pfn, rse, 999) for pfn in pfns)

    def rank(item: tuple[str, str, int]) -> tuple[int, int]:
        return (local.index(item[1]) if item[1] in local else len(local), item[2])

    return [(pfn, rse) for pfn, rse, _ in sorted(pairs, key=rank)]


def _rucio_expected(label: str, record: dict, sums: dict[str, str], size: int | None) -> tuple[dict, int | None]:
    """Checksums and size a replica must match: the manifest's, which must agree with Rucio's own."""
    expected = {k: v.lower() for k, v in sums.items() if v}
    for alg in ("adler32", "md5"):
        value = str(record.get(alg) or "").lower()
        if alg == "adler32" and value:
            value = value.zfill(8)
        if value and expected.setdefault(alg, value) != value:
            raise ChecksumMismatch(f"{label}: the bundle records {alg} {expected[alg]}, Rucio records {value}")
    if not any(expected.get(a) for a in ("adler32", "md5", "sha256")):
        raise FetchError(
            f"{label}: Rucio records no adler32 or md5 for {record.get('scope')}:{record.get('name')}, "
            "so a download could not be verified"
        )
    if record.get("bytes") is not None:
        if size is not None and size != record["bytes"]:
            raise ChecksumMismatch(f"{label}: the bundle records {size} bytes, Rucio records {record['bytes']}")
        size = record["bytes"]
    return expected, size


def fetch_replica(ref: FileRef, record: dict, allow_http: bool) -> tuple[Path, dict]:
    """Fetch one file of a Rucio listing, local RSEs first, verified; returns (path, {uri, rse})."""
    expected, size = _rucio_expected(ref.name, record, ref.checksums, ref.size)
    ref = FileRef(ref.name, ref.uri, size, expected, ref.site, ref.media_type)
    replicas = [(pfn, rse) for pfn, rse in _order_replicas(record) if urllib.parse.urlsplit(pfn).scheme in SCHEMES]
    if not replicas:
        raise FetchError(f"{ref.name}: Rucio lists no replica of {ref.uri} with a supported scheme")
    errors: list[Exception] = []
    for pfn, rse in replicas:
        try:
            return fetch_into_cache(ref, [pfn], expected, size, allow_http), {"uri": pfn, "rse": rse}
        except RuntimeProblem as err:
            errors.append(err)
    if all(isinstance(e, ChecksumMismatch) for e in errors):
        raise errors[-1]
    raise FetchError("; ".join(str(e) for e in errors))


def _safe_member(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "file"


def fetch_collection(ref: FileRef, records: list[dict], allow_http: bool) -> tuple[Path, list[dict]]:
    """Every file of a dataset or container, each verified and cached by content, linked into one folder."""
    folder = (
        cache_dir()
        / "collections"
        / hashlib.sha256(ref.uri.encode()).hexdigest()[:32]
        / _safe_member(ref.uri.split(":", 1)[1])
    )
    folder.mkdir(parents=True, exist_ok=True)
    used: list[dict] = []
    names: set[str] = set()
    for record in records:
        did = f"{record.get('scope')}:{record.get('name')}"
        member = _safe_member(str(record.get("name")))
        if member in names:  # the same name in two scopes of a container
            member = _safe_member(did)
        names.add(member)
        path, where = fetch_replica(FileRef(f"{ref.name}/{member}", did), record, allow_http)
        dest = folder / member
        if not (dest.is_file() and os.path.samefile(dest, path)):
            tmp = folder / f".{member}.{os.getpid()}.link"
            tmp.unlink(missing_ok=True)
            try:
                os.link(path, tmp)
            except OSError:  # another file system: a copy
                shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        used.append({"did": did, "name": member, **where})
    for stale in folder.iterdir():  # files since detached from an open dataset
        if stale.name not in names:
            stale.unlink()
    return folder, used


def rucio_client_download(ref: FileRef, expected: dict[str, str]) -> tuple[Path, dict]:
    """Through the installed rucio client (its own config and token; it checks adler32/md5 itself): a file DID's
    copy, or for a dataset or container a folder of its files; returns (path, what was used)."""
    downloadclient = need("rucio.client.downloadclient", "Rucio download", "pip install rucio-clients")
    dest = cache_path(ref)
    if dest.is_file():
        return dest, {"uri": ref.uri}
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f"rucio.{os.getpid()}.part"
    shutil.rmtree(staging, ignore_errors=True)
    item = {"did": ref.uri, "base_dir": str(staging), "no_subdir": True}
    local = [r.strip() for r in os.environ.get("NBPACK_LOCAL_RSES", "").split(",") if r.strip()]
    if local:
        item["rse"] = "|".join(local)
    try:
        try:
            results = downloadclient.DownloadClient().download_dids([item])
        except Exception:
            if not local:
                raise
            item.pop("rse")  # no local replica: any reachable one
            results = downloadclient.DownloadClient().download_dids([item])
        got = [
            (f"{r.get('scope')}:{r.get('name')}", Path(r["dest_file_paths"][0]))
            for r in results
            if r.get("dest_file_paths")
        ]
        if len(got) == 1 and got[0][0] == ref.uri:
            verify_part(got[0][1], ref.name, expected, ref.size)
            os.replace(got[0][1], dest)
            return dest, {"uri": ref.uri}
        folder = (
            cache_dir()
            / "collections"
            / hashlib.sha256(ref.uri.encode()).hexdigest()[:32]
            / _safe_member(ref.uri.split(":", 1)[1])
        )
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for _, path in got:
            os.replace(path, folder / _safe_member(path.name))
        return folder, {"uri": ref.uri, "files": [{"did": did} for did, _ in got]}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
