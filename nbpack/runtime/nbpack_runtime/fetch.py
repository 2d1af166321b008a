"""Downloads into the cache: HTTP(S) with WLCG bearer-token rules, S3, XRootD, local files."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .base import CHUNK, NETWORK_ERRORS, TIMEOUT, Transient, with_retries
from .checksums import verify_part
from .display import Progress, need
from .errors import ChecksumMismatch, FetchError, RuntimeProblem
from .refs import FileRef, cache_path


def bearer_token() -> str | None:
    # WLCG bearer token discovery: BEARER_TOKEN, then BEARER_TOKEN_FILE. Only _bearer_header sends it.
    if os.environ.get("BEARER_TOKEN"):
        return os.environ["BEARER_TOKEN"].strip()
    path = os.environ.get("BEARER_TOKEN_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def _bearer_header(url: str) -> dict[str, str]:
    """The WLCG token for ``url`` only over https to a host the hub allows (``NBPACK_BEARER_HOSTS``, comma-separated
    ``host`` or ``host:port``); a manifest names the URL but can never add a host."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = {h.strip().lower() for h in os.environ.get("NBPACK_BEARER_HOSTS", "").split(",") if h.strip()}
    if parts.scheme != "https" or not host or not ({host, f"{host}:{parts.port or 443}"} & allowed):
        return {}
    token = bearer_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to http and never with credentials to another host or port."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if old.scheme == "https" and new.scheme != "https":
            raise FetchError(
                f"{old.scheme}://{old.netloc}{old.path} redirects to {new.scheme}://{new.netloc}:"
                " leaving https is refused"
            )
        follow = super().redirect_request(req, fp, code, msg, headers, newurl)
        if follow is not None and (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            for name in ("Authorization", "X-rucio-auth-token"):
                follow.remove_header(name)
        return follow


opener = urllib.request.build_opener(_SafeRedirect)


def _http_download(url: str, part: Path, label: str, size: int | None, headers: dict[str, str]) -> None:
    """Download into ``part``, resuming with a Range request; bounded retries on transient failures."""

    def attempt() -> None:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        if size is not None and offset == size and offset > 0:
            return
        req = urllib.request.Request(url, headers=dict(headers))
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        try:
            with opener.open(req, timeout=TIMEOUT) as resp:
                resumed = offset and resp.status == 206
                total = size or (
                    int(resp.headers["Content-Length"]) + (offset if resumed else 0)
                    if resp.headers.get("Content-Length")
                    else None
                )
                done = offset if resumed else 0
                bar = Progress(label, total)
                with open(part, "ab" if resumed else "wb") as out:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        bar.update(done)
                bar.update(done, final=True)
                return
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:
                return  # the part is already complete; the checksum decides
            if err.code < 500:
                raise FetchError(f"{label}: {url} answered HTTP {err.code} {err.reason}") from None
            raise Transient(str(err)) from None
        except NETWORK_ERRORS as err:
            raise Transient(str(err)) from None

    with_retries(f"{label}: {url}", attempt)


def _s3_download(url: str, part: Path) -> None:
    boto3 = need("boto3", "an s3:// file", "pip install boto3")
    u = urllib.parse.urlsplit(url)
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    client.download_file(u.netloc, u.path.lstrip("/"), str(part))


def _root_download(url: str, part: Path) -> None:
    if shutil.which("xrdcp"):
        subprocess.run(["xrdcp", "--force", "--nopbar", url, str(part)], check=True, timeout=3600)
        return
    client = need("XRootD.client", "a root:// file", "pip install xrootd (or conda install -c conda-forge xrootd)")
    with client.File() as fh:
        status, _ = fh.open(url)
        if not status.ok:
            raise FetchError(f"{url}: XRootD open failed ({status.message})")
        with open(part, "wb") as out:
            offset = 0
            while True:
                status, data = fh.read(offset, CHUNK)
                if not status.ok:
                    raise FetchError(f"{url}: XRootD read failed ({status.message})")
                if not data:
                    break
                out.write(data)
                offset += len(data)


def _fetch_url(url: str, part: Path, label: str, size: int | None, allow_http: bool) -> None:
    """Fetch one URL into ``part`` with the scheme's client."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "https":
        _http_download(url, part, label, size, _bearer_header(url))
    elif scheme == "http":
        if not allow_http:
            raise FetchError(
                f"{label}: plain http is refused ({url}); use https, or set options.allow_http in the bundle manifest"
            )
        _http_download(url, part, label, size, {})
    elif scheme in ("davs", "dav"):
        https = ("https" if scheme == "davs" else "http") + url[len(scheme) :]
        if scheme == "dav" and not allow_http:
            raise FetchError(f"{label}: plain dav:// is refused ({url}); use davs://")
        _http_download(https, part, label, size, _bearer_header(https))
    elif scheme == "s3":
        _s3_download(url, part)
    elif scheme == "root":
        _root_download(url, part)
    elif scheme == "file":
        shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), part)
    else:
        raise FetchError(f"{label}: unsupported URL scheme {scheme!r} in {url}")


def fetch_into_cache(
    ref: FileRef, urls: list[str], expected: dict[str, str], size: int | None, allow_http: bool
) -> Path:
    """Fetch the first URL that works, verify, then rename into the cache."""
    dest = cache_path(ref)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[RuntimeProblem] = []
    for url in urls:
        for _ in range(2):
            resumed = part.exists()
            try:
                _fetch_url(url, part, ref.name, size, allow_http)
                verify_part(part, ref.name, expected, size)
            except ChecksumMismatch as err:
                part.unlink(missing_ok=True)  # a bad download never becomes visible
                errors.append(err)
                if not resumed:
                    break
                continue  # a resumed part may have been stale: try once from scratch
            except RuntimeProblem as err:
                errors.append(err)
                break
            os.replace(part, dest)
            return dest
    if errors and all(isinstance(e, ChecksumMismatch) for e in errors):
        raise errors[-1]
    raise FetchError("; ".join(map(str, errors)) or f"{ref.name}: no usable location")
