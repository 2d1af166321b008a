"""A Python client of the nbpack service, so ESAP's Django code needs no hand-written HTTP.

Uploads and downloads stream from and to files; nothing holds a whole bundle in memory. Standard library only and
Python 3.8 syntax: it runs inside ESAP's gateway as well as in nbpack (``nbpack.client`` re-exports it).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Optional, TypeVar

from nbpack_client.errors import InvalidInput, ServiceError, UpstreamError

# Client.list (the API's listing) shadows the builtin inside the class body.
_Items = List[Dict[str, Any]]
# Downloads: a replica that dies mid-answer cuts the stream short; each retry resumes where the file stopped.
DOWNLOAD_ATTEMPTS = 5
# Creates: each carries an Idempotency-Key, so a retry after a lost answer or a 5xx gets the first answer back.
CREATE_ATTEMPTS = 4
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")

__all__ = ["Client", "CREATE_ATTEMPTS", "CreateInterrupted", "DOWNLOAD_ATTEMPTS", "Progress", "ServiceError", "pull"]


# Told (bytes done, bytes in all or None) as a transfer goes: a progress bar.
Progress = Callable[[int, Optional[int]], None]  # typing's forms: evaluated on 3.8 too


_T = TypeVar("_T")


def _retry(
    action: Callable[[], _T], attempts: int, pause: Callable[[int], float], transient: Callable[[Exception], bool]
) -> _T:
    """``action()`` until it returns, at most ``attempts`` times: an error ``transient`` accepts is tried again after
    ``pause(n)`` seconds (n = 1 after the first attempt); any other error, or the last one, is raised as it is."""
    for n in range(1, attempts + 1):
        try:
            return action()
        except Exception as err:
            if n == attempts or not transient(err):
                raise
        time.sleep(pause(n))
    raise AssertionError("unreachable")  # the loop returns or raises


def _create_transient(err: Exception) -> bool:
    """A lost connection, a 5xx, or the same create still running elsewhere: the same request may be sent again."""
    if isinstance(err, ServiceError):
        return err.http_status >= 500 or err.code == "idempotency_in_progress"
    return isinstance(err, (UpstreamError, http.client.HTTPException))


def _download_transient(err: Exception) -> bool:
    """A network error, a cut answer or a 5xx (a 4xx would answer the same again; a full disk is a _WriteFailed)."""
    if isinstance(err, ServiceError):
        return err.http_status >= 500
    return isinstance(err, (UpstreamError, OSError, http.client.HTTPException))


class CreateInterrupted(KeyboardInterrupt):
    """Ctrl-C during a create; ``sent`` says whether the whole body had gone up (then the service may have stored
    it: the same create with ``idempotency_key=key`` answers its id without making a second handle)."""

    def __init__(self, key: str, sent: bool) -> None:
        super().__init__(key)
        self.key, self.sent = key, sent


class _Body:
    """A request body streamed from parts (bytes or files), with its total length known up front."""

    def __init__(self, parts: list[bytes | Path], progress: Progress | None = None) -> None:
        self.parts = parts
        self.length = sum(len(p) if isinstance(p, bytes) else p.stat().st_size for p in parts)
        self.progress = progress
        self.sent = False  # the last byte went to the socket (set per attempt)

    def __iter__(self) -> Iterator[bytes]:
        done = 0
        self.sent = False
        for part in self.parts:
            if isinstance(part, bytes):
                chunks: Iterator[bytes] = iter([part])
            else:
                chunks = _file_chunks(part)
            for chunk in chunks:
                yield chunk
                done += len(chunk)
                if self.progress:
                    self.progress(done, self.length)
        self.sent = True


class _WriteFailed(Exception):
    """Writing a download to its file failed: an OSError of the local disk, carried past the network retries."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


class Client:
    """Talks to one nbpack service with an API key."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 300) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"service URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.api_key = api_key or os.environ.get("NBPACK_API_KEY")
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = path if path.startswith("http") else self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        hdrs = dict(headers or {})
        if self.api_key:
            hdrs.setdefault("X-API-Key", self.api_key)
        data: Any = body
        if isinstance(body, _Body):
            hdrs["Content-Length"] = str(body.length)
            data = iter(body)
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            try:
                doc = json.loads(err.read(65536))
                raise ServiceError(err.code, doc.get("error", "error"), doc.get("message", err.reason)) from None
            except (ValueError, AttributeError):
                raise ServiceError(err.code, "http_error", str(err.reason)) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise UpstreamError(f"cannot reach the nbpack service at {self.url}: {reason}") from None

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        with self._request(method, path, **kw) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    # -- bundles

    def _create(
        self,
        body: _Body,
        content_type: str,
        query: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """POST a create with an Idempotency-Key, retried on a lost connection, a 5xx or a create still running:
        every attempt is the same request with the same key, so the service makes one handle at most."""
        key = idempotency_key or str(uuid.uuid4())
        headers = {"Content-Type": content_type, "Idempotency-Key": key}
        delay = float(os.environ.get("NBPACK_RETRY_DELAY", "1"))

        def post() -> dict[str, Any]:
            try:
                return self._json("POST", "/api/v1/bundles", body=body, headers=headers, query=query)
            except KeyboardInterrupt:
                raise CreateInterrupted(key, body.sent) from None

        return _retry(post, CREATE_ATTEMPTS, lambda n: delay * 2 ** (n - 1), _create_transient)

    def create(
        self,
        request: dict[str, Any],
        parts: dict[str, str | Path] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a bundle from a create request (JSON) and table/notebook files named in it as parts.

        Retried safely (see ``_create``); pass ``idempotency_key`` to repeat a create whose answer was lost."""
        if not parts:
            body = _Body([json.dumps(request).encode()])
            return self._create(body, "application/json", idempotency_key=idempotency_key)
        boundary = "nbpack-" + secrets.token_hex(12)
        chunks: list[bytes | Path] = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n'
            f"Content-Type: application/json\r\n\r\n".encode(),
            json.dumps(request).encode(),
            b"\r\n",
        ]
        for name, path in parts.items():
            path = Path(path)
            if not path.is_file():
                raise InvalidInput(f"part {name}: {path}: no such file")
            chunks += [
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode(),
                path,
                b"\r\n",
            ]
        chunks.append(f"--{boundary}--\r\n".encode())
        return self._create(_Body(chunks), f"multipart/form-data; boundary={boundary}", idempotency_key=idempotency_key)

    def push(
        self,
        bundle_zip: str | Path,
        *,
        expires_in: int | None = None,
        callback_url: str | None = None,
        owner: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload a built bundle zip as a new handle; the answer holds its id and links.

        Retried safely (see ``_create``); pass ``idempotency_key`` to repeat a push whose answer was lost."""
        path = Path(bundle_zip)
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        return self._create(
            _Body([path], progress),
            "application/zip",
            {"expires_in": expires_in, "callback_url": callback_url, "owner": owner},
            idempotency_key,
        )

    def list(self, owner: str | None = None, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        """One page of this key's tenant's handles, newest first: ``{"bundles": [...], "next": cursor}``."""
        return self._json("GET", "/api/v1/bundles", query={"owner": owner, "limit": limit, "cursor": cursor})

    def extend(self, bundle_id: str, expires_in: int) -> dict[str, Any]:
        """Make a handle expire ``expires_in`` seconds from now."""
        return self._json(
            "PATCH",
            f"/api/v1/bundles/{bundle_id}",
            body=json.dumps({"expires_in": expires_in}).encode(),
            headers={"Content-Type": "application/json"},
        )

    def get(self, bundle_id: str) -> dict[str, Any]:
        """A bundle's manifest."""
        return self._json("GET", f"/api/v1/bundles/{bundle_id}")

    def links(self, bundle_id: str, expires_in: int | None = None) -> dict[str, Any]:
        """Fresh signed links of a bundle."""
        return self._json("GET", f"/api/v1/bundles/{bundle_id}/links", query={"expires_in": expires_in})["links"]

    def hubs(self, bundle_id: str) -> _Items:
        """The hub ranking of a bundle."""
        return self._json("GET", f"/api/v1/bundles/{bundle_id}/hubs")["hubs"]

    def delete(self, bundle_id: str) -> None:
        """Delete a bundle and its returns."""
        self._request("DELETE", f"/api/v1/bundles/{bundle_id}").close()

    def download(self, bundle_id: str, dest: str | Path) -> Path:
        """Download a bundle zip to ``dest`` (streamed, atomic)."""
        return self._save(f"/api/v1/bundles/{bundle_id}/download", Path(dest))

    def payloads(self, keyword: str | None = None, text: str | None = None) -> _Items:
        """The service's payload catalog, optionally searched."""
        return self._json("GET", "/api/v1/payloads", query={"keyword": keyword, "q": text})["payloads"]

    # -- returns

    def returns(self, bundle_id: str) -> _Items:
        """The return bundles received for a bundle."""
        return self._json("GET", f"/api/v1/bundles/{bundle_id}/returns")["returns"]

    def get_return(self, bundle_id: str, return_id: str) -> dict[str, Any]:
        """A return bundle's manifest."""
        return self._json("GET", f"/api/v1/bundles/{bundle_id}/returns/{return_id}")

    def download_return(self, bundle_id: str, return_id: str, dest: str | Path) -> Path:
        """Download a return bundle zip."""
        return self._save(f"/api/v1/bundles/{bundle_id}/returns/{return_id}/download", Path(dest))

    def return_file(self, bundle_id: str, return_id: str, name: str, dest: str | Path) -> Path:
        """Download one file of a return bundle (an output, the notebook)."""
        quoted = urllib.parse.quote(name)
        return self._save(f"/api/v1/bundles/{bundle_id}/returns/{return_id}/files/{quoted}", Path(dest))

    def return_html(self, bundle_id: str, return_id: str) -> str:
        """The executed notebook of a return as sanitised HTML."""
        with self._request("GET", f"/api/v1/bundles/{bundle_id}/returns/{return_id}/notebook.html") as resp:
            return resp.read().decode("utf-8")

    def health(self) -> dict[str, Any]:
        """The service's health answer."""
        return self._json("GET", "/healthz")

    def _save(self, path: str, dest: Path, progress: Progress | None = None) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with open(tmp, "wb") as out:
                try:
                    self._fetch(path, out, progress)
                except _WriteFailed as failed:
                    failed.error.filename = failed.error.filename or str(dest)
                    raise failed.error from None
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _fetch(self, path: str, out: BinaryIO, progress: Progress | None = None) -> None:
        """GET ``path`` into ``out``, whole or not at all.

        A body shorter than its Content-Length (urllib takes a cut connection for the end of the body), a network
        error or a 5xx is retried, up to DOWNLOAD_ATTEMPTS, asking for the rest with ``Range`` (what the service
        serves for download never changes under a URL: a handle's zip, a return, a return's member).
        """

        def get_rest() -> None:
            have = out.tell()
            with self._request("GET", path, headers={"Range": f"bytes={have}-"} if have else None) as resp:
                start = _resumed_at(resp, have)
                out.seek(start)
                out.truncate()
                length = resp.headers.get("Content-Length")
                total = start + int(length) if length is not None else None
                while chunk := resp.read(1 << 20):
                    try:
                        out.write(chunk)
                    except OSError as err:  # the local disk (full, gone), not the network: no retry
                        raise _WriteFailed(err) from None
                    if progress:
                        progress(out.tell(), total)
                if length is not None and out.tell() != start + int(length):
                    raise UpstreamError(f"the answer stopped after {out.tell() - start} of {length} bytes")

        try:
            _retry(get_rest, DOWNLOAD_ATTEMPTS, lambda n: min(0.5 * 2 ** (n - 1), 5.0), _download_transient)
        except Exception as err:
            if not _download_transient(err):
                raise
            raise UpstreamError(f"download from {self.url} failed after {DOWNLOAD_ATTEMPTS} attempts ({err})") from None


def _resumed_at(resp: Any, have: int) -> int:
    """Where the answer's body starts in the file: ``have`` for a 206 that continues it, else 0 (start over)."""
    if resp.status != 206:
        return 0
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not m or int(m.group(1)) != have:
        raise UpstreamError(
            f"the service resumed the download at the wrong place ({resp.headers.get('Content-Range')})"
        )
    return have


def pull(url: str, dest: str | Path, *, timeout: float = 300, progress: Progress | None = None) -> Path:
    """Download a bundle from a signed link (landing or download URL), no API key needed."""
    parsed = urllib.parse.urlsplit(url)
    path = parsed.path.rstrip("/")
    if not path.endswith("/download"):
        path += "/download"
    client = Client(f"{parsed.scheme}://{parsed.netloc}", timeout=timeout)
    full = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, parsed.query, ""))
    return client._save(full, Path(dest), progress)
