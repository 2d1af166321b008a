"""The service's operations over storage: store bundles, mint links, ingest and list returns.

Everything lives in storage (see design.md "Storage keys"); the local cache only holds derived
copies (git repositories, opened return zips), so any number of service processes sharing one
bucket behave as one service. ``server/`` calls these methods and only translates HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import quote

from . import archive, gitrepo, links, webhook
from .bundle import BuildSpec, build_bundle, check_bundle, open_bundle, with_returns
from .config import Config, hash_api_key
from .create import check_callback_url
from .errors import (
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InvalidBundle,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthorized,
)
from .hubs import Hub, load_esap_facilities, load_registry, rank_hubs
from .payloads import PayloadCatalog, load_catalog
from .returns import check_return, external_paths, open_return
from .storage import ObjectInfo, S3Storage, Storage, open_storage, put_headers

__all__ = ["Service", "Stored", "blob_key", "bundle_key", "return_key"]

log = logging.getLogger("nbpack.service")
_ID_RE = r"^b-[0-9a-f]{24}$"
# How long a presigned PUT URL for a returned output stays usable: long enough to start the upload. Each URL
# writes only its own upload key; ingest copies a verified upload to the blob's key, which no URL can write.
BLOB_URL_TTL = 900
EXTERNAL = "external.json"


def bundle_key(bid: str, name: str) -> str:
    """Storage key of one of a bundle's objects (bundle.zip, manifest.json, meta.json, notebook.ipynb)."""
    _check_id(bid, "b")
    return f"bundles/{bid}/{name}"


def return_key(bid: str, rid: str, name: str) -> str:
    """Storage key of one of a return's objects (return.zip, manifest.json)."""
    _check_id(bid, "b")
    _check_id(rid, "r")
    return f"returns/{bid}/{rid}/{name}"


def blob_key(bid: str, sha256: str) -> str:
    """Storage key of an output uploaded straight to the object store (content-addressed per bundle)."""
    _check_id(bid, "b")
    if not (isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")
    return f"blobs/{bid}/{sha256}"


def _upload_prefix(bid: str, sha256: str) -> str:
    return blob_key(bid, sha256).replace(f"blobs/{bid}/", f"blobs/{bid}/uploads/", 1)


def _upload_key(bid: str, sha256: str, nonce: str) -> str:
    """Storage key of one presigned upload of an output; verified uploads are copied to ``blob_key``."""
    return f"{_upload_prefix(bid, sha256)}/{nonce}"


def _check_id(value: str, prefix: str) -> None:
    if not (isinstance(value, str) and len(value) == 26 and value.startswith(prefix + "-")
            and all(c in "0123456789abcdef" for c in value[2:])):
        raise NotFound(f"no such {'bundle' if prefix == 'b' else 'return'} {value[:40]!r}")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass
class Stored:
    """The answer to a create: the bundle's id, manifest (no token), links, and whether it is new."""

    id: str
    manifest: dict[str, Any]
    links: dict[str, Any]
    created: bool
    expires: str

    def to_json(self) -> dict[str, Any]:
        """The create call's JSON answer."""
        return {"id": self.id, "title": self.manifest["title"], "created": self.created,
                "expires": self.expires, "links": self.links}


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the API shows it: the return token is never echoed back."""
    out = dict(manifest)
    if "returns" in out:
        out["returns"] = {k: v for k, v in out["returns"].items() if k != "token"}
    return out


def _sweep_spool(folder: Path, max_age: float = 86400) -> None:
    """Remove upload spools a killed process left behind; only old ones, as other workers share the folder."""
    cutoff = time.time() - max_age
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass


class Service:
    """The nbpack service over one storage; stateless beyond that storage and a derived cache."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage or open_storage(config.storage_url, endpoint_url=config.s3_endpoint)
        self.cache_dir = Path(config.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _sweep_spool(self.tmp_dir())
        self.hubs: list[Hub] = []
        if config.esap_facilities_file:
            self.hubs = load_esap_facilities(config.esap_facilities_file, config.hubs_file)
        elif config.hubs_file:
            self.hubs = load_registry(config.hubs_file)
        self.payloads: PayloadCatalog | None = load_catalog(config.payloads_file) if config.payloads_file else None
        self.notifier = webhook.Notifier(config.webhook_workers, config.webhook_queue, attempts=config.webhook_attempts)

    # -- authentication -------------------------------------------------------------------------

    def check_api_key(self, key: str | None) -> None:
        """Accept a configured API key (compared in constant time against stored hashes), else 401."""
        if not key:
            raise Unauthorized("an API key is required (header X-API-Key or Authorization: Bearer)")
        given = hash_api_key(key)
        ok = False
        for stored in self.config.api_key_hashes:
            ok |= hmac.compare_digest(given, stored)
        if not ok:
            raise Unauthorized("the API key is not valid")

    def check_read(self, bid: str, token: str | None) -> None:
        """A read link token for this bundle, else 403."""
        if not token:
            raise Forbidden("this link needs its token", code="token_missing")
        links.check_token(self.config.secret_key, token, "read", bid)

    def check_return_token(self, bid: str, token: str | None) -> None:
        """A return token for this bundle, else 403."""
        if not token:
            raise Forbidden("uploading a return needs the bundle's return token", code="token_missing")
        links.check_token(self.config.secret_key, token, "return", bid)

    # -- bundles --------------------------------------------------------------------------------

    def _expires_in(self, requested: int | None) -> int:
        if requested is None:
            return self.config.link_ttl
        if requested < 60 or requested > self.config.max_link_ttl:
            raise InvalidInput(f"expires_in must be between 60 and {self.config.max_link_ttl} seconds")
        return requested

    def create(self, spec: BuildSpec, base_url: str, *, expires_in: int | None = None,
               callback_url: str | None = None) -> Stored:
        """Build a bundle from ``spec`` and store it (see :meth:`store`)."""
        with tempfile.TemporaryDirectory(prefix="nbpack-create-", dir=self.tmp_dir()) as tmp:
            path = Path(tmp) / "bundle.zip"
            build_bundle(spec, path)
            return self.store(path, base_url, expires_in=expires_in, callback_url=callback_url)

    def tmp_dir(self) -> Path:
        """The spool folder for uploads and builds (local disk, never memory)."""
        path = self.cache_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def receive(self, stream: IO[bytes], limit: int) -> Path:
        """Spool an upload to a temp file on disk (never memory), refusing more than ``limit`` bytes."""
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=self.tmp_dir())
        total = 0
        try:
            with open(fd, "wb") as out:
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
                    if total > limit:
                        raise TooLarge(f"upload is larger than the limit of {limit} bytes")
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def store(self, zip_path: Path, base_url: str, *, expires_in: int | None = None,
              callback_url: str | None = None) -> Stored:
        """Store a built bundle zip (checked first); the same bundle twice is stored once."""
        ttl = self._expires_in(expires_in)
        if callback_url and not self.config.webhook_secret:
            raise InvalidInput("callback_url needs the service's NBPACK_WEBHOOK_SECRET to sign notifications")
        check_callback_url(callback_url, local_mode=self.config.local_mode)
        with open_bundle(zip_path) as bf:
            problems = check_bundle(bf)
            if problems:
                raise InvalidBundle(f"bundle is invalid: {problems[0]}")
            bid, manifest = bf.id, bf.manifest
            notebook = bf.read(manifest["payload"]["notebook"])
        if self.storage.exists(bundle_key(bid, "manifest.json")):
            stored = self.manifest(bid)
            return Stored(bid, stored, self.links(bid, base_url, ttl), False, self._meta(bid).get("expires", ""))
        expires = _now() + timedelta(seconds=ttl)
        returns: dict[str, Any] = {
            "endpoint": f"{base_url}/api/v1/bundles/{bid}/returns",
            "token": links.make_token(self.config.secret_key, "return", bid,
                                      min(ttl, self.config.return_ttl) if expires_in is None else ttl),
            "expires": _iso(expires)}
        if self.direct_uploads:
            returns["direct_threshold"] = self.config.direct_upload_threshold
        with tempfile.TemporaryDirectory(prefix="nbpack-store-", dir=self.tmp_dir()) as tmp:
            final = Path(tmp) / "bundle.zip"
            manifest = with_returns(zip_path, final, returns)
            self.storage.put_file(bundle_key(bid, "bundle.zip"), final)
        meta = {"created": _iso(_now()), "expires": _iso(expires), "callback_url": callback_url}
        self.storage.put_bytes(bundle_key(bid, "meta.json"), json.dumps(meta).encode())
        self.storage.put_bytes(bundle_key(bid, "notebook.ipynb"), notebook)
        # The manifest is written last: its presence is what makes a bundle exist for every process.
        self.storage.put_bytes(bundle_key(bid, "manifest.json"), json.dumps(manifest, sort_keys=True).encode())
        log.info("bundle stored", extra={"bundle": bid, "bytes": zip_path.stat().st_size})
        return Stored(bid, public_manifest(manifest), self.links(bid, base_url, ttl), True, meta["expires"])

    def manifest(self, bid: str) -> dict[str, Any]:
        """A stored bundle's manifest, without its return token."""
        try:
            return public_manifest(json.loads(self.storage.read_bytes(bundle_key(bid, "manifest.json"))))
        except NotFound:
            raise NotFound(f"no such bundle {bid}") from None

    def _meta(self, bid: str) -> dict[str, Any]:
        try:
            return json.loads(self.storage.read_bytes(bundle_key(bid, "meta.json")))
        except NotFound:
            return {}

    def notebook(self, bid: str) -> bytes:
        """The bundle's notebook as built (for previews)."""
        self.manifest(bid)
        return self.storage.read_bytes(bundle_key(bid, "notebook.ipynb"))

    def delete(self, bid: str) -> None:
        """Delete a bundle and its returns; the manifest goes first so it vanishes at once everywhere."""
        self.manifest(bid)
        self.storage.delete(bundle_key(bid, "manifest.json"))
        self.storage.delete_prefix(f"returns/{bid}/")
        self.storage.delete_prefix(f"blobs/{bid}/")
        self.storage.delete_prefix(f"bundles/{bid}/")
        shutil.rmtree(self.cache_dir / "git" / f"{bid}.git", ignore_errors=True)

    def bundle_object(self, bid: str) -> ObjectInfo:
        """The stored zip's object info (size for Content-Length and ranges)."""
        self.manifest(bid)
        return self.storage.stat(bundle_key(bid, "bundle.zip"))

    def presigned_download(self, bid: str, filename: str) -> str | None:
        """A presigned URL for the bundle zip when the store can give one and the service is set to use it."""
        if not self.config.presign_downloads:
            return None
        return self.storage.presigned_get(bundle_key(bid, "bundle.zip"), 900, filename=filename)

    def bundle_chunks(self, bid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bundle zip's bytes, streamed from storage."""
        return self.storage.iter_chunks(bundle_key(bid, "bundle.zip"), 1 << 20, start, end)

    def links(self, bid: str, base_url: str, expires_in: int | None = None) -> dict[str, Any]:
        """Fresh signed links of a bundle: landing, download, git, and one launch link per hub."""
        ttl = self._expires_in(expires_in)
        token = links.make_token(self.config.secret_key, "read", bid, ttl)
        out: dict[str, Any] = {
            "landing": f"{base_url}/b/{bid}?t={token}",
            "download": f"{base_url}/b/{bid}/download?t={token}",
            "git": f"{base_url}/git/{token}/{bid}.git",
            "manifest": f"{base_url}/api/v1/bundles/{bid}",
        }
        if self.hubs:
            # ESAP facility names hold spaces and slashes ("SURF/ASTRON JupyterHub"): one encoded path segment.
            out["launch"] = {h.name: f"{base_url}/b/{bid}/launch/{quote(h.name, safe='')}?t={token}"
                             for h in self.hubs}
        return out

    def ranking(self, bid: str) -> list[dict[str, Any]]:
        """The hubs able to run a bundle, best first, each with its reasons."""
        return [r.to_json() for r in rank_hubs(self.hubs, self.manifest(bid))]

    def launch_url(self, bid: str, hub_name: str, token: str, base_url: str) -> str:
        """Where the launch button of ``hub_name`` sends a user for this bundle."""
        manifest = self.manifest(bid)
        hub = next((h for h in self.hubs if h.name == hub_name), None)
        if hub is None:
            raise NotFound(f"no hub named {hub_name!r} in this service's registry")
        return links.launch_url(hub.url, hub.launch, f"{base_url}/git/{token}/{bid}.git", ref="main",
                                notebook=manifest["payload"]["notebook"],
                                target_dir=links.target_dir_for(bid, manifest["title"]))

    def git_repo(self, bid: str) -> Path:
        """The bundle's git repository in the local cache, built on first use."""
        self.manifest(bid)
        return gitrepo.ensure_repo(lambda: self.storage.open(bundle_key(bid, "bundle.zip")), bid, self.cache_dir)

    # -- returns --------------------------------------------------------------------------------

    @property
    def direct_uploads(self) -> bool:
        """True when returned outputs may go straight to the object store (S3 backend, threshold set)."""
        return isinstance(self.storage, S3Storage) and self.config.direct_upload_threshold > 0

    def blob_upload(self, bid: str, doc: Any) -> dict[str, Any]:
        """Where to PUT one large output of a return (``{sha256, bytes}``), or that it is already stored."""
        self.manifest(bid)
        if not self.direct_uploads:
            raise Conflict("this service stores returns in a local folder: send every output inside the return"
                           " zip", code="direct_upload_unavailable")
        if not isinstance(doc, dict):
            raise InvalidInput("send a JSON object {\"sha256\": hex, \"bytes\": n}")
        size = doc.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput("bytes must be a whole number >= 0")
        if size > self.config.return_limits.max_member:
            raise TooLarge(f"an output of {size} bytes is larger than the limit of"
                           f" {self.config.return_limits.max_member} bytes")
        sha256 = doc.get("sha256")
        final = blob_key(bid, sha256)  # type: ignore[arg-type]
        try:
            held = self.storage.stat(final).size
        except NotFound:
            held = None
        if held is not None:
            # Only the service writes a verified blob: it is never signed for upload again.
            if held != size:
                raise Conflict(f"the stored output with sha256 {sha256} holds {held} bytes, not {size}",
                               code="blob_mismatch")
            return {"exists": True, "key": final}
        # Every upload gets its own key, bound to the declared length and sha256: it can overwrite nothing.
        key = _upload_key(bid, sha256, secrets.token_hex(12))  # type: ignore[arg-type]
        url = self.storage.presigned_put(key, BLOB_URL_TTL, size=size, sha256=sha256)  # type: ignore[arg-type]
        if url is None:  # a backend without presigned URLs
            raise Conflict("this service's storage cannot hand out upload URLs", code="direct_upload_unavailable")
        return {"url": url, "method": "PUT", "headers": put_headers(size, sha256),  # type: ignore[arg-type]
                "key": key, "expires_in": BLOB_URL_TTL}

    def _verify_blob(self, bid: str, path: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Find an external output's verified blob, or verify an upload of it and copy it into place.

        Uploads land in ``blobs/<bid>/uploads/<sha256>/<nonce>``; the first whose size and streamed sha256 match
        is copied to ``blobs/<bid>/<sha256>``, which no URL can write, and the uploads are removed.
        """
        final = blob_key(bid, entry["sha256"])
        try:
            held = self.storage.stat(final).size
        except NotFound:
            held = None
        if held is not None and held != entry["bytes"]:
            # The manifest is wrong, not the verified blob: it stays for the returns that use it.
            raise InvalidBundle(f"{path}: the stored blob {final} holds {held} bytes, the manifest says"
                                f" {entry['bytes']}", code="blob_mismatch")
        record = self._hashed_blob(final, entry) if held is not None else None
        if record is not None:
            return record
        prefix = f"{_upload_prefix(bid, entry['sha256'])}/"
        uploads = list(self.storage.list(prefix))
        if not uploads and held is not None:
            raise ChecksumMismatch(f"{path}: blob {final} does not match its sha256; it was removed, upload it again",
                                   code="blob_mismatch")
        if not uploads:
            raise InvalidBundle(f"{path} is marked external but its blob {final} was not uploaded (POST"
                                " .../returns/blobs for an upload URL first)", code="blob_missing")
        for info in uploads:
            if self._hashed_blob(info.key, entry) is not None:
                self.storage.copy(info.key, final)
                self.storage.delete_prefix(prefix)
                after = self.storage.stat(final)
                return {"key": final, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
        raise ChecksumMismatch(f"{path}: no upload of its blob matches its size and sha256; they were removed,"
                               " upload it again", code="blob_mismatch")

    def _hashed_blob(self, key: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        """The record of ``key`` when it holds exactly the entry's bytes; a wrong one is removed."""
        try:
            before = self.storage.stat(key)
        except NotFound:
            return None
        if before.size == entry["bytes"]:
            h = hashlib.sha256()
            for chunk in self.storage.iter_chunks(key, 1 << 20):
                h.update(chunk)
            after = self.storage.stat(key)
            if h.hexdigest() == entry["sha256"] and after.etag == before.etag and after.size == before.size:
                return {"key": key, "bytes": after.size, "sha256": entry["sha256"], "etag": after.etag}
        # A wrong blob would answer "exists" to every later upload of this output: remove it.
        self.storage.delete(key)
        return None

    def ingest(self, bid: str, stream: IO[bytes]) -> tuple[dict[str, Any], bool]:
        """Validate an uploaded return bundle and store it once; ``(summary, created)``.

        Outputs the manifest marks external and the zip leaves out must already sit in ``blobs/<bid>/<sha256>``;
        each is verified (size and a streamed sha256) before the return becomes visible.
        """
        self.manifest(bid)
        limit = self.config.return_limits.max_total
        path = self.receive(stream, limit)
        try:
            with open_return(path, self.config.return_limits) as rf:
                problems = check_return(rf, external_ok=True)
                if problems:
                    raise InvalidBundle(f"return bundle is invalid: {problems[0]}")
                if rf.manifest["bundle_id"] != bid:
                    raise Forbidden(f"this return bundle belongs to bundle {rf.manifest['bundle_id']}, not {bid}",
                                    code="token_bundle")
                manifest = rf.manifest
                absent = external_paths(manifest) - set(rf.zf.namelist())
            rid = manifest["id"]
            if self.storage.exists(return_key(bid, rid, "manifest.json")):
                return self._summary(bid, manifest), False
            if absent:
                entries = {e["path"]: e for e in manifest["contents"]}
                records = {p: self._verify_blob(bid, p, entries[p]) for p in sorted(absent)}
                # Before the zip: whichever zip ends up stored, a member it lacks can be found here.
                self.storage.put_bytes(return_key(bid, rid, EXTERNAL), json.dumps(records, sort_keys=True).encode())
            self.storage.put_file(return_key(bid, rid, "return.zip"), path)
            # Written last: a return becomes visible only once its zip is whole. Create-once, so of concurrent
            # uploads of one return exactly one is "created" (one 201, one webhook).
            if not self.storage.put_if_absent(return_key(bid, rid, "manifest.json"),
                                              json.dumps(manifest, sort_keys=True).encode()):
                return self._summary(bid, manifest), False
        finally:
            path.unlink(missing_ok=True)
        log.info("return ingested", extra={"bundle": bid, "return": rid})
        # meta.json is read only when a webhook could be sent: a GET per upload otherwise (5% of a small ingest).
        callback = self._meta(bid).get("callback_url") if self.config.webhook_secret else None
        if callback:
            self.notifier.submit(callback, {"event": "return.created", "bundle_id": bid, "return_id": rid,
                                            "status": manifest["status"]}, self.config.webhook_secret)
        return self._summary(bid, manifest), True

    def _summary(self, bid: str, m: dict[str, Any]) -> dict[str, Any]:
        return {"id": m["id"], "bundle_id": bid, "status": m["status"], "started": m["started"], "ended": m["ended"],
                "outputs": len(m["outputs"]), "values": [v["name"] for v in m["values"]], "error": m.get("error")}

    def list_returns(self, bid: str) -> list[dict[str, Any]]:
        """The returns of a bundle that are fully ingested, oldest first."""
        self.manifest(bid)
        out = []
        for info in self.storage.list(f"returns/{bid}/"):
            if info.key.endswith("/manifest.json"):
                m = json.loads(self.storage.read_bytes(info.key))
                summary = self._summary(bid, m)
                summary["received"] = _iso(info.modified) if info.modified else None
                out.append(summary)
        return sorted(out, key=lambda s: (s.get("received") or "", s["id"]))

    def return_manifest(self, bid: str, rid: str) -> dict[str, Any]:
        """One return's manifest."""
        try:
            return json.loads(self.storage.read_bytes(return_key(bid, rid, "manifest.json")))
        except NotFound:
            raise NotFound(f"no return {rid} for bundle {bid}") from None

    def return_object(self, bid: str, rid: str) -> ObjectInfo:
        """The return zip's object info."""
        self.return_manifest(bid, rid)
        return self.storage.stat(return_key(bid, rid, "return.zip"))

    def return_chunks(self, bid: str, rid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The return zip's bytes, streamed from storage."""
        return self.storage.iter_chunks(return_key(bid, rid, "return.zip"), 1 << 20, start, end)

    def _local_return(self, bid: str, rid: str) -> Path:
        # Returns are immutable, so a local copy is a safe cache for random access into the zip.
        path = self.cache_dir / "returns" / bid / f"{rid}.zip"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.storage.download_to(return_key(bid, rid, "return.zip"), path)
        return path

    def return_member(self, bid: str, rid: str, name: str) -> tuple[int, BinaryIO]:
        """One file of a return bundle: (size, stream), from the zip or, for an external output, its blob."""
        manifest = self.return_manifest(bid, rid)
        listed = {e["path"] for e in manifest["contents"]} | {"nbpack-return.json", "ro-crate-metadata.json"}
        if name not in listed:
            raise NotFound(f"return {rid} has no file {name!r}")
        zf = archive.open_zip(self._local_return(bid, rid), self.config.return_limits)
        if name in zf.namelist():
            info = zf.getinfo(name)
            return info.file_size, _ClosingMember(zf, zf.open(info))
        zf.close()
        return self._external_member(bid, rid, name)

    def _external_member(self, bid: str, rid: str, name: str) -> tuple[int, BinaryIO]:
        try:
            record = json.loads(self.storage.read_bytes(return_key(bid, rid, EXTERNAL)))[name]
        except (NotFound, KeyError):
            raise NotFound(f"return {rid} has no stored copy of {name!r}") from None
        info = self.storage.stat(record["key"])
        # A presigned URL handed out before ingest could still overwrite the blob: never serve changed bytes.
        if info.size != record["bytes"] or (record.get("etag") and info.etag != record["etag"]):
            raise Conflict(f"{name}: its blob changed after the return was ingested", code="blob_changed")
        return info.size, self.storage.open(record["key"])

    def return_notebook(self, bid: str, rid: str) -> bytes:
        """The executed notebook of a return."""
        manifest = self.return_manifest(bid, rid)
        with archive.open_zip(self._local_return(bid, rid), self.config.return_limits) as zf:
            return archive.read_member(zf, manifest["notebook"])

    def ping(self) -> None:
        """Raise ``StorageError`` when storage is unreachable."""
        self.storage.ping()


class _ClosingMember:
    """A zip member stream that also closes its zip."""

    def __init__(self, zf: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.zf, self.member = zf, member

    def read(self, n: int = -1) -> bytes:
        return self.member.read(n)

    def close(self) -> None:
        self.member.close()
        self.zf.close()
