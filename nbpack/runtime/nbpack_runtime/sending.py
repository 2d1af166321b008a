"""Sending a return zip to the service: direct PUTs of big outputs, then the zip, with bounded retries."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from .base import CHUNK, NETWORK_ERRORS, RETRIES, TIMEOUT, ZIP_TIME, Transient, with_retries
from .errors import RuntimeProblem, UploadError
from .fetch import opener
from .session import current_bundle
from .vocab import RETURN_MANIFEST
from .zips import zip_entry


def upload(path: str | os.PathLike) -> dict:
    """POST a return zip to the bundle's ``returns.endpoint`` (streamed, bounded retries); returns the answer.

    Outputs larger than the bundle's ``returns.direct_threshold`` are first PUT straight to the service's object
    store and the zip is sent without them; if that path fails in any way, the whole zip is sent instead.
    """
    return send(path)


def send(path: str | os.PathLike) -> dict:
    # finish() has a parameter named ``upload``, so it calls this instead.
    bundle = current_bundle()
    returns = bundle.manifest.get("returns") or {}
    if not returns.get("endpoint") or not returns.get("token"):
        raise UploadError("this bundle has no returns.endpoint/token: it was not stored by an nbpack service")
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"{path} does not exist")
    threshold = returns.get("direct_threshold")
    if isinstance(threshold, int) and not isinstance(threshold, bool) and threshold >= 0:
        try:
            answer = _send_direct(path, returns, threshold)
            if answer is not None:
                return answer
        except (RuntimeProblem, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            # Nothing is lost: the whole zip is still on disk and goes the ordinary way.
            print(f"nbpack: large outputs not sent directly ({err}); sending the whole return")
    return _post_zip(path, returns, "the server refused the return")


def _post_zip(path: Path, returns: dict, refused: str) -> dict:
    """POST a return zip from disk to the returns endpoint, the file reopened for each attempt."""
    size = path.stat().st_size
    headers = {
        "Authorization": f"Bearer {returns['token']}",
        "Content-Type": "application/zip",
        "Content-Length": str(size),
    }
    rid = _return_id(path)
    if rid is not None:
        # Announced, the service can store the body as it arrives instead of after it (it checks the id still).
        headers["X-Nbpack-Return-Id"] = rid

    def make() -> tuple[urllib.request.Request, Any]:
        body = open(path, "rb")  # noqa: SIM115 - closed by _request after each attempt
        return urllib.request.Request(returns["endpoint"], data=body, method="POST", headers=headers), body

    return _request(make, refused, returns["endpoint"])


def _return_id(path: Path) -> str | None:
    """The id in the zip's manifest when it is one (``r-`` + 24 hex), else None (the service reads it itself)."""
    try:
        with zipfile.ZipFile(path) as zf:
            rid = json.loads(zf.read(RETURN_MANIFEST)).get("id")
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile):
        return None
    return rid if isinstance(rid, str) and re.fullmatch(r"r-[0-9a-f]{24}", rid) else None


def _request(make: Any, refused: str, where: str, done_if: int | None = None) -> dict:
    """Make the request ``make()`` builds (fresh body each try); 5xx and network errors retried, 4xx final but
    ``done_if``, which means the work is done already (answered as ``{"status": done_if}``)."""
    # A service restart can outlast the default window: NBPACK_UPLOAD_ATTEMPTS widens it.
    attempts = max(1, int(os.environ.get("NBPACK_UPLOAD_ATTEMPTS") or RETRIES))

    def attempt() -> dict:
        req, body = make()
        try:
            with opener.open(req, timeout=TIMEOUT) as resp:
                text = resp.read().decode(errors="replace")
                try:
                    return json.loads(text) if text.strip() else {}
                except ValueError:
                    return {"response": text}
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            if err.code == done_if:
                return {"status": err.code}
            try:
                detail = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            if err.code < 500:
                raise UploadError(f"{refused} (HTTP {err.code}): {detail}") from None
            raise Transient(f"HTTP {err.code}: {detail}") from None
        except NETWORK_ERRORS as err:
            raise Transient(str(getattr(err, "reason", err))) from None
        finally:
            if body is not None:
                body.close()

    return with_retries(where, attempt, error=UploadError, attempts=attempts)


def _send_direct(path: Path, returns: dict, threshold: int) -> dict | None:
    """PUT outputs above ``threshold`` to presigned URLs, then POST the zip without them; None if none is."""
    blobs_url = returns["endpoint"].rstrip("/") + "/blobs"
    auth = {"Authorization": f"Bearer {returns['token']}"}
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read(RETURN_MANIFEST))
        names = set(zf.namelist())
        big = {o["path"] for o in manifest["outputs"] if o["bytes"] > threshold and o["path"] in names}
        if not big:
            return None
        for out in manifest["outputs"]:
            if out["path"] not in big:
                continue
            ask = json.dumps({"sha256": out["sha256"], "bytes": out["bytes"]}).encode()
            answer = _request(
                lambda ask=ask: (
                    urllib.request.Request(
                        blobs_url, data=ask, method="POST", headers={**auth, "Content-Type": "application/json"}
                    ),
                    None,
                ),
                "the server gave no upload URL",
                blobs_url,
            )
            if not answer.get("exists"):
                _put_member(zf, out, answer["url"], answer.get("headers") or {})
            out["external"] = "blob"
        # Same manifest (so the same id) with the big members marked external and left out of the zip.
        slim = path.with_name(path.name + ".slim")
        try:
            with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out_zf:
                for info in zf.infolist():
                    if info.filename in big:
                        continue
                    if info.filename == RETURN_MANIFEST:
                        zip_entry(out_zf, RETURN_MANIFEST, json.dumps(manifest, indent=2).encode())
                        continue
                    # A fresh ZipInfo: writing through the source's would overwrite the sizes it is read with.
                    entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
                    entry.external_attr = 0o644 << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = info.file_size  # lets zipfile pick zip64 for a member over 2 GiB
                    with zf.open(info) as src, out_zf.open(entry, "w") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
            answer = _post_zip(slim, returns, "the server refused the return without its large outputs")
        finally:
            slim.unlink(missing_ok=True)
    print(f"nbpack: {len(big)} large output(s) uploaded straight to the object store")
    return answer


def _put_member(zf: zipfile.ZipFile, out: dict, url: str, signed: dict) -> None:
    """PUT one zip member to a presigned URL, streamed from disk with the headers the URL was signed with."""
    info = zf.getinfo(out["path"])

    def make() -> tuple[urllib.request.Request, Any]:
        body = zf.open(info)
        return urllib.request.Request(
            url,
            data=body,
            method="PUT",
            headers={
                "Content-Length": str(info.file_size),
                "Content-Type": "application/octet-stream",
                **{str(k): str(v) for k, v in signed.items()},
            },
        ), body

    # 412: the URL may only create the blob (If-None-Match: *) and it exists, with the bytes the store checked against
    # the same sha256 — stored by another upload of this output, or by an earlier try whose answer was lost.
    _request(make, f"the object store refused {out['path']}", f"PUT {out['path']}", done_if=412)
