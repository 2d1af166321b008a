"""nbpack runtime: shipped inside every bundle, next to the notebook and ``nbpack.json``.

The bootstrap cell calls ``start()``; the results cell calls ``finish()``. This module runs in hubs where
nbpack itself is not installed, so it uses only the standard library and pyarrow; pandas, astropy, IPython,
boto3, rucio and XRootD are imported lazily, with a clear message when one is needed but missing.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import html
import importlib.metadata
import json
import mimetypes
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__version__ = "1.0.0"
__all__ = [
    "Bundle", "FileRef", "RuntimeProblem", "ChecksumMismatch", "FetchError", "UploadError",
    "start", "finish", "upload", "save_output", "save_value", "check_requirements", "record_error",
    "return_id",
]

MANIFEST = "nbpack.json"
RETURN_MANIFEST = "nbpack-return.json"
CRATE = "ro-crate-metadata.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20
RETRIES = 4
TIMEOUT = 60
SCHEMES = ("https", "http", "davs", "s3", "root", "file")
_DID = re.compile(r"^[A-Za-z0-9_.-]+:[^/].*$")


# --- errors: one line each, naming the problem -------------------------------------------------------------

class RuntimeProblem(Exception):
    """A failure the runtime explains in one line (missing manifest, refused URL, missing client...)."""


class ChecksumMismatch(RuntimeProblem):
    """A downloaded file does not match the checksum the manifest or Rucio recorded."""


class FetchError(RuntimeProblem):
    """A file could not be fetched from any of its locations."""


class UploadError(RuntimeProblem):
    """The return bundle could not be uploaded (it is still on disk)."""


# --- small helpers ---------------------------------------------------------------------------------------

def _now() -> str:
    # timezone.utc, not datetime.UTC: hubs may run Python < 3.11
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")  # noqa: UP017


def _retry_delay(attempt: int) -> float:
    # Tests shrink the base delay through the environment; hubs keep the default.
    base = float(os.environ.get("NBPACK_RETRY_DELAY", "0.5"))
    return min(base * (2 ** attempt), 10.0)


def _adler32_hex(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def _checksums_of(path: Path, algs: list[str]) -> dict[str, str]:
    """Compute the named checksums of a file in one pass."""
    hashers = {a: hashlib.new(a) for a in algs if a in ("md5", "sha256")}
    adler = 1  # Rucio's adler32 starts from zlib's seed 1
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if "adler32" in algs:
                adler = zlib.adler32(chunk, adler)
    out = {a: h.hexdigest() for a, h in hashers.items()}
    if "adler32" in algs:
        out["adler32"] = _adler32_hex(adler)
    return out


def _sha256(path: Path) -> str:
    return _checksums_of(path, ["sha256"])["sha256"]


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")


def _show(text: str, html_text: str | None = None) -> None:
    """Show a message as HTML in a kernel, as text otherwise."""
    if html_text and _in_kernel():
        from IPython.display import HTML, display
        display(HTML(html_text))
    else:
        print(text)


def _need(module: str, why: str, install: str) -> Any:
    """Import an optional module or explain exactly what to install."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise RuntimeProblem(f"{why} needs the '{module}' package; install it with: {install}") from None


# --- progress bar -----------------------------------------------------------------------------------------

class _Progress:
    """A download progress line: an updating display in a kernel, stderr otherwise."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self._last = label, total, 0, 0.0
        self._handle = None
        if _in_kernel():
            from IPython.display import display
            self._handle = display({"text/plain": self._text()}, raw=True, display_id=True)

    def _text(self) -> str:
        if self.total:
            pct = min(100, int(100 * self.done / self.total))
            bar = "#" * (pct // 4)
            return f"{self.label} [{bar:<25}] {pct:3d}% {self.done}/{self.total} bytes"
        return f"{self.label} {self.done} bytes"

    def update(self, n: int, final: bool = False) -> None:
        self.done = n
        now = time.monotonic()
        if not final and now - self._last < 0.5:
            return
        self._last = now
        if self._handle is not None:
            self._handle.update({"text/plain": self._text()}, raw=True)
        else:
            sys.stderr.write("\r" + self._text() + ("\n" if final else ""))
            sys.stderr.flush()


# --- file references and the download cache ---------------------------------------------------------------

@dataclass
class FileRef:
    """One entry of the manifest's ``files[]``: a remote file fetched on demand."""

    name: str
    uri: str
    size: int | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    site: str | None = None
    media_type: str | None = None

    @classmethod
    def from_manifest(cls, entry: dict) -> FileRef:
        """Build from a manifest ``files[]`` entry."""
        return cls(entry["name"], entry["uri"], entry.get("size"), dict(entry.get("checksums") or {}),
                   entry.get("site"), entry.get("media_type"))

    @property
    def is_did(self) -> bool:
        """True when the URI is a Rucio DID ``scope:name``."""
        return urllib.parse.urlsplit(self.uri).scheme not in SCHEMES and bool(_DID.match(self.uri))


def cache_dir() -> Path:
    """The shared download cache (``NBPACK_CACHE``, default ``~/.cache/nbpack``)."""
    return Path(os.environ.get("NBPACK_CACHE") or Path.home() / ".cache" / "nbpack")


def _cache_path(ref: FileRef) -> Path:
    # Keyed by content checksum so the same file in two bundles is fetched once.
    for alg in ("sha256", "md5", "adler32"):
        if alg in ref.checksums:
            key = Path(alg) / ref.checksums[alg]
            break
    else:
        key = Path("uri") / hashlib.sha256(ref.uri.encode()).hexdigest()[:32]
    base = urllib.parse.urlsplit(ref.uri).path.rsplit("/", 1)[-1] if not ref.is_did else ref.uri.split(":", 1)[1]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base.rsplit("/", 1)[-1]) or ref.name
    return cache_dir() / key / base


def _verify(part: Path, ref_name: str, expected: dict[str, str], size: int | None) -> None:
    """Raise ChecksumMismatch unless the file matches every given checksum and size."""
    if size is not None and part.stat().st_size != size:
        raise ChecksumMismatch(f"{ref_name}: size expected {size} bytes, got {part.stat().st_size}")
    algs = [a for a in ("adler32", "md5", "sha256") if expected.get(a)]
    got = _checksums_of(part, algs)
    for alg in algs:
        if got[alg] != expected[alg].lower():
            raise ChecksumMismatch(f"{ref_name}: {alg} expected {expected[alg].lower()}, got {got[alg]}")


def _bearer_token() -> str | None:
    # WLCG bearer token discovery: BEARER_TOKEN, then BEARER_TOKEN_FILE.
    if os.environ.get("BEARER_TOKEN"):
        return os.environ["BEARER_TOKEN"].strip()
    path = os.environ.get("BEARER_TOKEN_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def _http_download(url: str, part: Path, label: str, size: int | None, headers: dict[str, str]) -> None:
    """Download into ``part``, resuming with a Range request; bounded retries on transient failures."""
    last: Exception | None = None
    for attempt in range(RETRIES):
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
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                resumed = offset and resp.status == 206
                total = size or (int(resp.headers["Content-Length"]) + (offset if resumed else 0)
                                 if resp.headers.get("Content-Length") else None)
                done = offset if resumed else 0
                bar = _Progress(label, total)
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
            last = err
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            last = err
        time.sleep(_retry_delay(attempt))
    raise FetchError(f"{label}: {url} failed after {RETRIES} attempts ({last})")


def _s3_download(url: str, part: Path) -> None:
    boto3 = _need("boto3", "an s3:// file", "pip install boto3")
    u = urllib.parse.urlsplit(url)
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    client.download_file(u.netloc, u.path.lstrip("/"), str(part))


def _root_download(url: str, part: Path) -> None:
    if shutil.which("xrdcp"):
        subprocess.run(["xrdcp", "--force", "--nopbar", url, str(part)], check=True, timeout=3600)
        return
    client = _need("XRootD.client", "a root:// file",
                   "pip install xrootd (or conda install -c conda-forge xrootd)")
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
        _http_download(url, part, label, size, {})
    elif scheme == "http":
        if not allow_http:
            raise FetchError(f"{label}: plain http is refused ({url}); use https, or set options.allow_http "
                             "in the bundle manifest")
        _http_download(url, part, label, size, {})
    elif scheme in ("davs", "dav"):
        token = _bearer_token()
        https = ("https" if scheme == "davs" else "http") + url[len(scheme):]
        if scheme == "dav" and not allow_http:
            raise FetchError(f"{label}: plain dav:// is refused ({url}); use davs://")
        _http_download(https, part, label, size, {"Authorization": f"Bearer {token}"} if token else {})
    elif scheme == "s3":
        _s3_download(url, part)
    elif scheme == "root":
        _root_download(url, part)
    elif scheme == "file":
        shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), part)
    else:
        raise FetchError(f"{label}: unsupported URL scheme {scheme!r} in {url}")


def _fetch_into_cache(ref: FileRef, urls: list[str], expected: dict[str, str], size: int | None,
                      allow_http: bool) -> Path:
    """Fetch the first URL that works, verify, then rename into the cache."""
    dest = _cache_path(ref)
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
                _verify(part, ref.name, expected, size)
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


# --- Rucio: client when installed, REST otherwise ---------------------------------------------------------

def _rucio_token() -> str | None:
    if os.environ.get("RUCIO_ACCESS_TOKEN"):
        return os.environ["RUCIO_ACCESS_TOKEN"].strip()
    path = os.environ.get("RUCIO_TOKEN_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    return None


def _rucio_replicas(host: str, token: str, did: str) -> dict:
    """``GET {host}/replicas/{scope}/{name}`` (JSON stream, one file per line) → the file's record."""
    scope, name = did.split(":", 1)
    url = f"{host.rstrip('/')}/replicas/{urllib.parse.quote(scope)}/{urllib.parse.quote(name, safe='')}"
    req = urllib.request.Request(url, headers={
        "X-Rucio-Auth-Token": token, "Authorization": f"Bearer {token}", "Accept": "application/x-json-stream"})
    for attempt in range(RETRIES):
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                for line in resp.read().decode().splitlines():
                    if line.strip():
                        record = json.loads(line)
                        if record.get("scope") == scope and record.get("name") == name:
                            return record
            raise FetchError(f"{did}: Rucio at {host} returned no replica record")
        except urllib.error.HTTPError as err:
            if err.code < 500:
                detail = err.read().decode(errors="replace")[:200]
                raise FetchError(f"{did}: Rucio answered HTTP {err.code} {detail}") from None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(_retry_delay(attempt))
    raise FetchError(f"{did}: Rucio at {host} is unreachable")


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


def _rucio_client_download(ref: FileRef, expected: dict[str, str]) -> Path:
    downloadclient = _need("rucio.client.downloadclient", "Rucio download", "pip install rucio-clients")
    dest = _cache_path(ref)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / "rucio.part"
    item = {"did": ref.uri, "base_dir": str(staging), "no_subdir": True}
    local = [r.strip() for r in os.environ.get("NBPACK_LOCAL_RSES", "").split(",") if r.strip()]
    if local:
        item["rse"] = "|".join(local)
    try:
        downloadclient.DownloadClient().download_dids([item])
    except Exception:
        if not local:
            raise
        item.pop("rse")  # no local replica: any reachable one
        downloadclient.DownloadClient().download_dids([item])
    got = staging / ref.uri.split(":", 1)[1]
    try:
        _verify(got, ref.name, expected, ref.size)
    except ChecksumMismatch:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(got, dest)
    shutil.rmtree(staging, ignore_errors=True)
    return dest


# --- the bundle -------------------------------------------------------------------------------------------

class Bundle:
    """The opened bundle: manifest, catalogs and file references."""

    def __init__(self, root: Path, manifest: dict) -> None:
        self.root = root
        self.manifest = manifest
        self.id: str = manifest.get("id", "")
        self.title: str = manifest.get("title", "")
        self.files: dict[str, FileRef] = {f["name"]: FileRef.from_manifest(f) for f in manifest.get("files", [])}
        self.fetched: dict[str, dict] = {}  # name → {uri, rse?} actually used
        self._catalog_entries = {c["name"]: c for c in manifest.get("catalogs", [])}
        self._verified: set[str] = set()

    def __repr__(self) -> str:
        return f"<nbpack Bundle {self.id} {self.title!r}: {len(self.catalogs)} catalogs, {len(self.files)} files>"

    @property
    def catalogs(self) -> list[str]:
        """Catalog names, in manifest order."""
        return list(self._catalog_entries)

    @property
    def options(self) -> dict:
        """The manifest's ``options`` (``allow_http``)."""
        return self.manifest.get("options") or {}

    # Catalogs ------------------------------------------------------------------------------------------

    def catalog(self, name: str, as_: str = "arrow") -> Any:
        """Load a catalog as a pyarrow Table, pandas DataFrame or astropy Table (units applied)."""
        if name not in self._catalog_entries:
            raise RuntimeProblem(f"no catalog named {name!r}; this bundle has: {', '.join(self.catalogs) or 'none'}")
        entry = self._catalog_entries[name]
        path = self.root / entry["path"]
        if not path.is_file():
            raise RuntimeProblem(f"catalog {name!r}: {entry['path']} is missing from the bundle folder")
        import pyarrow.parquet as pq
        if name in self._verified:
            table = pq.read_table(path)
        else:
            table = self._read_verified(name, path, entry["sha256"])
            self._verified.add(name)
        if as_ == "arrow":
            return table
        if as_ == "pandas":
            _need("pandas", "catalog(as_='pandas')", "pip install pandas")
            return table.to_pandas()
        if as_ == "astropy":
            return _to_astropy(table, entry)
        raise RuntimeProblem(f"catalog as_={as_!r} is not one of 'arrow', 'pandas', 'astropy'")

    @staticmethod
    def _read_verified(name: str, path: Path, expected: str) -> Any:
        """Read a catalog while its sha256 is computed in a thread: the check then costs ~nothing extra."""
        import concurrent.futures

        import pyarrow.parquet as pq
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            digest = pool.submit(_sha256, path)
            try:
                table = pq.read_table(path)
            except Exception:
                # A damaged file is reported as a checksum problem, not as whatever Parquet made of it.
                table = None
            got = digest.result()
        if got != expected:
            raise ChecksumMismatch(f"catalog {name!r}: sha256 expected {expected}, got {got}")
        return table if table is not None else pq.read_table(path)

    # Files ---------------------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """Fetch (once, into the shared cache), verify and return the local path of a referenced file."""
        if name not in self.files:
            raise RuntimeProblem(f"no file named {name!r}; this bundle has: {', '.join(self.files) or 'none'}")
        ref = self.files[name]
        allow_http = bool(self.options.get("allow_http"))
        if not ref.is_did:
            path = _fetch_into_cache(ref, [ref.uri], ref.checksums, ref.size, allow_http)
            self.fetched[name] = {"uri": ref.uri}
            return path
        return self._fetch_did(ref, allow_http)

    def _fetch_did(self, ref: FileRef, allow_http: bool) -> Path:
        cached = _cache_path(ref)
        if cached.is_file():
            return cached
        try:
            import rucio.client.downloadclient  # noqa: F401
            has_client = True
        except ImportError:
            has_client = False
        host = os.environ.get("RUCIO_HOST") or ((self.manifest.get("results") or {}).get("rucio") or {}).get("host")
        token = _rucio_token()
        if has_client and not (host and token):
            path = _rucio_client_download(ref, ref.checksums)
            self.fetched[ref.name] = {"uri": ref.uri}
            return path
        if not (host and token):
            raise FetchError(
                f"{ref.name}: {ref.uri} is a Rucio DID; install the Rucio client (pip install rucio-clients) or set "
                "RUCIO_HOST and RUCIO_ACCESS_TOKEN (or RUCIO_TOKEN_FILE) to resolve it through Rucio's REST API")
        record = _rucio_replicas(host, token, ref.uri)
        expected = dict(ref.checksums)
        for alg in ("adler32", "md5"):
            if record.get(alg):
                expected.setdefault(alg, record[alg].lower())
        size = ref.size if ref.size is not None else record.get("bytes")
        replicas = [(pfn, rse) for pfn, rse in _order_replicas(record)
                    if urllib.parse.urlsplit(pfn).scheme in SCHEMES]
        if not replicas:
            raise FetchError(f"{ref.name}: Rucio lists no replica of {ref.uri} with a supported scheme")
        errors: list[Exception] = []
        for pfn, rse in replicas:
            try:
                path = _fetch_into_cache(ref, [pfn], expected, size, allow_http)
            except RuntimeProblem as err:
                errors.append(err)
                continue
            self.fetched[ref.name] = {"uri": pfn, "rse": rse}
            return path
        if all(isinstance(e, ChecksumMismatch) for e in errors):
            raise errors[-1]
        raise FetchError("; ".join(str(e) for e in errors))

    def fetch_all(self) -> dict[str, Path]:
        """Fetch every referenced file; returns name → local path."""
        return {name: self.file(name) for name in self.files}

    # Summary -------------------------------------------------------------------------------------------

    def summary(self, missing: list[str] | None = None) -> tuple[str, str]:
        """The start() summary as (plain text, HTML)."""
        rows = [("bundle", f"{self.title} ({self.id})")]
        for c in self.manifest.get("catalogs", []):
            rows.append(("catalog", f"{c['name']}: {c.get('rows', '?')} rows × {len(c.get('columns', []))} columns"))
        for ref in self.files.values():
            size = f"{ref.size} bytes" if ref.size is not None else "size unknown"
            rows.append(("file", f"{ref.name}: {size}" + (f" at {ref.site}" if ref.site else "") + f" ({ref.uri})"))
        if missing:
            rows.append(("missing", ", ".join(missing)))
        text = "\n".join(f"{k:>8}  {v}" for k, v in rows)
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return text, f"<table>{cells}</table>"


def _to_astropy(table: Any, entry: dict) -> Any:
    """Arrow table → astropy Table with unit/description/ucd from field metadata (manifest as fallback)."""
    _need("astropy", "catalog(as_='astropy')", "pip install astropy")
    import astropy.units as u
    from astropy.table import Table
    out = Table.from_pandas(table.to_pandas())
    columns = {c["name"]: c for c in entry.get("columns", [])}
    for f in table.schema:
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        info = {**{k: v for k, v in columns.get(f.name, {}).items() if k in ("unit", "description", "ucd")}, **meta}
        col = out[f.name]
        if info.get("unit"):
            col.unit = u.Unit(info["unit"], parse_strict="warn")
        if info.get("description"):
            col.description = info["description"]
        if info.get("ucd"):
            col.meta["ucd"] = info["ucd"]
    return out


# --- start / requirements ---------------------------------------------------------------------------------

@dataclass
class _State:
    bundle: Bundle | None = None
    started: str | None = None
    values: dict[str, dict] = field(default_factory=dict)
    error: str | None = None


_STATE = _State()


def _find_root(path: str | os.PathLike | None) -> Path:
    candidates = [path, os.environ.get("NBPACK_BUNDLE_DIR"), Path(__file__).resolve().parent, Path.cwd()]
    for cand in candidates:
        if not cand:
            continue
        p = Path(cand)
        if p.name == MANIFEST and p.is_file():
            return p.parent.resolve()
        if (p / MANIFEST).is_file():
            return p.resolve()
    raise RuntimeProblem(f"no {MANIFEST} found (looked in the argument, NBPACK_BUNDLE_DIR, "
                         f"{Path(__file__).resolve().parent} and {Path.cwd()})")


def start(path: str | None = None) -> Bundle:
    """Open the bundle, check requirements (warn only) and show a short summary; safe to call twice."""
    root = _find_root(path)
    if _STATE.bundle is None or _STATE.bundle.root != root:
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except json.JSONDecodeError as err:
            raise RuntimeProblem(f"{root / MANIFEST} is not valid JSON ({err})") from None
        _STATE.bundle = Bundle(root, manifest)
        _STATE.started = _now()
        _STATE.values.clear()
        _STATE.error = None
    missing = check_requirements(quiet=True)
    text, html_text = _STATE.bundle.summary(missing)
    _show(text, html_text)
    if missing:
        _show(_install_hint(missing))
    return _STATE.bundle


def _bundle() -> Bundle:
    return _STATE.bundle or start()


def _split_req(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$", spec)
    if not m:
        return spec.strip(), ""
    return m.group(1), m.group(3)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:4])


def _simple_satisfies(version: str, spec: str) -> bool:
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
           "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
           "~=": lambda a, b: a >= b}
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.match(r"(>=|<=|==|!=|~=|>|<)\s*(\S+)", clause)
        if m and not ops[m.group(1)](_version_tuple(version), _version_tuple(m.group(2).rstrip(".*"))):
            return False
    return True


def _satisfies(version: str, spec_text: str) -> bool:
    if not spec_text:
        return True
    try:
        from packaging.specifiers import SpecifierSet
        return SpecifierSet(spec_text).contains(version, prereleases=True)
    except ImportError:
        return _simple_satisfies(version, spec_text)
    except Exception:
        return _simple_satisfies(version, spec_text)


def _install_hint(missing: list[str]) -> str:
    pip = "%pip" if _in_kernel() else "pip"
    return "Missing packages: " + ", ".join(missing) + "\nInstall with: " + pip + " install " + " ".join(
        f"'{m}'" for m in missing)


def check_requirements(quiet: bool = False) -> list[str]:
    """Requirements from ``payload.requirements`` that are missing or too old (and how to install them)."""
    reqs = ((_STATE.bundle or start()).manifest.get("payload") or {}).get("requirements") or []
    missing = []
    for spec in reqs:
        name, constraint = _split_req(spec)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(spec.strip())
            continue
        if not _satisfies(version, constraint):
            missing.append(spec.strip())
    if missing and not quiet:
        print(_install_hint(missing))
    return missing


# --- outputs and values -----------------------------------------------------------------------------------

def _outputs_dir() -> Path:
    return _bundle().root / "outputs"


def _safe_rel(name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in name or ":" in name:
        raise RuntimeProblem(f"output name {name!r} must be a relative path inside outputs/ (no '..', ':' or '\\')")
    return rel


def save_output(src: str | os.PathLike | bytes, name: str | None = None) -> Path:
    """Copy a file (or write bytes) into ``outputs/`` next to the notebook; returns the saved path."""
    if isinstance(src, (bytes, bytearray)):
        if not name:
            raise RuntimeProblem("save_output(bytes) needs a name, e.g. save_output(data, 'result.bin')")
        target = _outputs_dir() / _safe_rel(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(src))
        return target
    source = Path(src)
    if not source.is_file():
        raise RuntimeProblem(f"save_output: {source} is not a file")
    target = _outputs_dir() / _safe_rel(name or source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return target


def _encode_value(value: Any) -> tuple[str, Any]:
    # The same choice scrapbook's glue() makes: text for strings, json when JSON-able.
    if isinstance(value, str):
        return "text", value
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            value = value.item()  # numpy scalars
        except Exception:
            pass
    try:
        json.dumps(value, allow_nan=False)
        return "json", value
    except (TypeError, ValueError):
        return "text", repr(value)


def save_value(name: str, value: Any) -> None:
    """Record a named value for the return bundle and glue it into the notebook the way scrapbook does."""
    encoder, data = _encode_value(value)
    _bundle()
    _STATE.values[name] = {"name": name, "encoder": encoder, "data": data}
    if _in_kernel():
        from IPython.display import display
        payload = {"name": name, "data": data, "encoder": encoder, "version": 2}
        display({f"application/scrapbook.scrap.{encoder}+json": payload},
                metadata={"scrapbook": {"name": name, "data": True, "display": False}}, raw=True)


def record_error(exc: BaseException | str) -> None:
    """Mark the run as failed; finish() then writes a return with status 'failed' and this error."""
    _STATE.error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"


# --- the return bundle ------------------------------------------------------------------------------------

def return_id(bundle_id: str, entries: list[tuple[str, str]], run: dict) -> str:
    """``r-`` + 24 hex of sha256 over the bundle id, the sorted (path, sha256) entries and the canonical JSON of
    ``run`` (status, error, started, ended, notebook, values, provenance): two runs differing in any of them differ."""
    h = hashlib.sha256(bundle_id.encode())
    for path, digest in sorted(entries):
        h.update(f"\n{path}\0{digest}".encode())
    keys = ("status", "error", "started", "ended", "notebook", "values", "provenance")
    h.update(b"\n" + json.dumps({k: run.get(k) for k in keys}, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False).encode())
    return "r-" + h.hexdigest()[:24]


def _notebook_path(bundle: Bundle) -> Path | None:
    nb_name = (bundle.manifest.get("payload") or {}).get("notebook", "")
    candidates: list[Path] = []
    if os.environ.get("NBPACK_NOTEBOOK"):
        candidates.append(Path(os.environ["NBPACK_NOTEBOOK"]))
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        # jupyter_server sets it to the notebook path, relative to the server root or absolute.
        candidates += [Path(session), Path.cwd() / Path(session).name, bundle.root / Path(session).name]
    if nb_name:
        candidates.append(bundle.root / nb_name)
    for cand in candidates:
        if cand.is_file() and cand.suffix == ".ipynb":
            return cand
    return None


def _kernel_name(notebook: Path | None) -> str:
    try:
        meta = json.loads(notebook.read_text()).get("metadata", {}) if notebook else {}
        return meta.get("kernelspec", {}).get("name") or "python3"
    except (OSError, ValueError, AttributeError):
        return "python3"


def _provenance(bundle: Bundle, notebook: Path | None) -> dict:
    names = [_split_req(s)[0] for s in (bundle.manifest.get("payload") or {}).get("requirements") or []]
    packages = {}
    for name in [*names, "pyarrow"]:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "missing"
    return {"python": platform.python_version(), "packages": packages, "kernel": _kernel_name(notebook),
            "host": socket.gethostname(), "platform": platform.platform(), "runtime_version": __version__}


def _crate(bundle: Bundle, manifest: dict) -> dict:
    """RO-Crate 1.2 metadata with one CreateAction: object = bundle inputs, result = outputs."""
    inputs = []
    for c in bundle.manifest.get("catalogs", []):
        inputs.append({"@id": f"#catalog-{c['name']}", "@type": "Dataset", "name": c["name"],
                       "sha256": c["sha256"], "contentSize": str(c["bytes"]),
                       "encodingFormat": "application/vnd.apache.parquet"})
    for ref in bundle.files.values():
        ent: dict[str, Any] = {"@id": ref.uri, "@type": "File", "name": ref.name}
        if ref.size is not None:
            ent["contentSize"] = str(ref.size)
        if ref.checksums.get("sha256"):
            ent["sha256"] = ref.checksums["sha256"]
        if ref.media_type:
            ent["encodingFormat"] = ref.media_type
        inputs.append(ent)
    outputs = [{"@id": o["path"], "@type": "File", "contentSize": str(o["bytes"]), "sha256": o["sha256"],
                **({"encodingFormat": o["media_type"]} if o.get("media_type") else {})}
               for o in manifest["outputs"]]
    notebook = {"@id": manifest["notebook"], "@type": ["File", "SoftwareSourceCode"],
                "programmingLanguage": "Python", "encodingFormat": "application/x-ipynb+json"}
    action = {"@id": "#run", "@type": "CreateAction", "name": f"Run of {bundle.title}",
              "startTime": manifest["started"], "endTime": manifest["ended"],
              "actionStatus": {"@id": "http://schema.org/CompletedActionStatus" if manifest["status"] == "completed"
                               else "http://schema.org/FailedActionStatus"},
              "instrument": {"@id": manifest["notebook"]},
              "object": [{"@id": e["@id"]} for e in inputs], "result": [{"@id": o["@id"]} for o in outputs]}
    if manifest.get("error"):
        action["error"] = manifest["error"]
    root = {"@id": "./", "@type": "Dataset", "name": f"nbpack return {manifest['id']}",
            "identifier": manifest["id"], "datePublished": manifest["ended"],
            "hasPart": [{"@id": manifest["notebook"]}] + [{"@id": o["@id"]} for o in outputs],
            "mentions": {"@id": "#run"}}
    descriptor = {"@id": CRATE, "@type": "CreativeWork", "conformsTo": {"@id": "https://w3id.org/ro/crate/1.2"},
                  "about": {"@id": "./"}}
    return {"@context": "https://w3id.org/ro/crate/1.2/context",
            "@graph": [descriptor, root, notebook, *outputs, action, *inputs]}


def _zip_entry(zf: zipfile.ZipFile, arcname: str, data: bytes | Path) -> None:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    if isinstance(data, Path):
        with open(data, "rb") as src, zf.open(info, "w") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    else:
        zf.writestr(info, data)


def finish(upload: bool = True, status: str | None = None, error: str | None = None) -> Path:
    """Write the return bundle zip next to the notebook (always), then upload it when the bundle says where."""
    bundle = _bundle()
    if error is not None:
        _STATE.error = error
    status = status or ("failed" if _STATE.error else "completed")
    nb_rel = (bundle.manifest.get("payload") or {}).get("notebook") or "notebook.ipynb"
    notebook = _notebook_path(bundle)
    if notebook is None:
        print(f"nbpack: the notebook file was not found (set NBPACK_NOTEBOOK); the return has no {nb_rel}")

    out_dir = bundle.root / "outputs"
    entries: list[tuple[str, Path]] = [(nb_rel, notebook)] if notebook else []
    if out_dir.is_dir():
        entries += [(f"outputs/{p.relative_to(out_dir).as_posix()}", p)
                    for p in sorted(out_dir.rglob("*")) if p.is_file()]
    entries.sort()
    contents = [{"path": a, "bytes": p.stat().st_size, "sha256": _sha256(p)} for a, p in entries]
    # The id covers the run as well as the files, so these are fixed before it is computed.
    ended = _now()
    run = {"status": status, "error": _STATE.error if status == "failed" else None,
           "started": _STATE.started or ended, "ended": ended, "notebook": nb_rel,
           "values": list(_STATE.values.values()), "provenance": _provenance(bundle, notebook)}
    rid = return_id(bundle.id, [(c["path"], c["sha256"]) for c in contents], run)
    outputs = []
    for c, (_, p) in zip(contents, entries, strict=True):
        if c["path"].startswith("outputs/"):
            out = dict(c)
            mt = mimetypes.guess_type(p.name)[0]
            if mt:
                out["media_type"] = mt
            outputs.append(out)
    _publish_results(bundle, rid, outputs)

    manifest = {"format": "nbpack-return", "format_version": "1.0", "id": rid, "bundle_id": bundle.id,
                **run, "outputs": outputs, "contents": contents}
    blobs: list[tuple[str, bytes | Path]] = [*entries,
                                             (RETURN_MANIFEST, json.dumps(manifest, indent=2).encode()),
                                             (CRATE, json.dumps(_crate(bundle, manifest), indent=2).encode())]
    target = Path(os.environ.get("NBPACK_RETURN_PATH") or bundle.root)
    if target.is_dir():
        target = target / f"nbpack-return-{rid}.zip"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname, data in sorted(blobs, key=lambda b: b[0]):
            _zip_entry(zf, arcname, data)
    os.replace(tmp, target)
    print(f"nbpack: return bundle {rid} ({status}) written to {target}")

    returns = bundle.manifest.get("returns") or {}
    if upload and returns.get("endpoint") and returns.get("token") and not os.environ.get("NBPACK_NO_UPLOAD"):
        try:
            answer = _send(target)
            links = {k: v for k, v in answer.items() if k != "id"}
            print(f"nbpack: uploaded as {answer.get('id', rid)}" + (f" {json.dumps(links)}" if links else ""))
        except RuntimeProblem as err:
            print(f"nbpack: upload failed: {err}\nThe return bundle is kept at {target}. Send it later with:\n"
                  f"  nbpack_runtime.upload({str(target)!r})\nor\n"
                  f"  curl -X POST -H 'Authorization: Bearer <token from nbpack.json returns.token>' "
                  f"-H 'Content-Type: application/zip' --data-binary @{target} {returns['endpoint']}")
    return target


def upload(path: str | os.PathLike) -> dict:
    """POST a return zip to the bundle's ``returns.endpoint`` (streamed, bounded retries); returns the answer.

    Outputs larger than the bundle's ``returns.direct_threshold`` are first PUT straight to the service's object
    store and the zip is sent without them; if that path fails in any way, the whole zip is sent instead.
    """
    return _send(path)


def _send(path: str | os.PathLike) -> dict:
    # finish() has a parameter named ``upload``, so it calls this instead.
    bundle = _bundle()
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
    size = path.stat().st_size

    def make() -> tuple[urllib.request.Request, Any]:
        body = open(path, "rb")  # noqa: SIM115 - closed by _request after each attempt
        return urllib.request.Request(returns["endpoint"], data=body, method="POST", headers={
            "Authorization": f"Bearer {returns['token']}", "Content-Type": "application/zip",
            "Content-Length": str(size)}), body

    return _request(make, "the server refused the return", returns["endpoint"])


def _request(make: Any, refused: str, where: str) -> dict:
    """Make the request ``make()`` builds (fresh body each try); 5xx and network errors retried, 4xx final."""
    last = ""
    # A service restart can outlast the default window: NBPACK_UPLOAD_ATTEMPTS widens it.
    attempts = max(1, int(os.environ.get("NBPACK_UPLOAD_ATTEMPTS") or RETRIES))
    for attempt in range(attempts):
        req, body = make()
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                text = resp.read().decode(errors="replace")
                try:
                    return json.loads(text) if text.strip() else {}
                except ValueError:
                    return {"response": text}
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            if err.code < 500:
                raise UploadError(f"{refused} (HTTP {err.code}): {detail}") from None
            last = f"HTTP {err.code}: {detail}"
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            last = str(getattr(err, "reason", err))
        finally:
            if body is not None:
                body.close()
        if attempt < attempts - 1:
            time.sleep(_retry_delay(attempt))
    raise UploadError(f"{where} failed after {attempts} attempts ({last})")


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
            answer = _request(lambda ask=ask: (urllib.request.Request(blobs_url, data=ask, method="POST", headers={
                **auth, "Content-Type": "application/json"}), None), "the server gave no upload URL", blobs_url)
            if not answer.get("exists"):
                _put_member(zf, out, answer["url"])
            out["external"] = "blob"
        # Same manifest (so the same id) with the big members marked external and left out of the zip.
        slim = path.with_name(path.name + ".slim")
        try:
            with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out_zf:
                for info in zf.infolist():
                    if info.filename in big:
                        continue
                    if info.filename == RETURN_MANIFEST:
                        _zip_entry(out_zf, RETURN_MANIFEST, json.dumps(manifest, indent=2).encode())
                        continue
                    # A fresh ZipInfo: writing through the source's would overwrite the sizes it is read with.
                    entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
                    entry.external_attr = 0o644 << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = info.file_size  # lets zipfile pick zip64 for a member over 2 GiB
                    with zf.open(info) as src, out_zf.open(entry, "w") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
            size = slim.stat().st_size

            def make() -> tuple[urllib.request.Request, Any]:
                body = open(slim, "rb")  # noqa: SIM115 - closed by _request after each attempt
                return urllib.request.Request(returns["endpoint"], data=body, method="POST", headers={
                    **auth, "Content-Type": "application/zip", "Content-Length": str(size)}), body

            answer = _request(make, "the server refused the return without its large outputs",
                              returns["endpoint"])
        finally:
            slim.unlink(missing_ok=True)
    print(f"nbpack: {len(big)} large output(s) uploaded straight to the object store")
    return answer


def _put_member(zf: zipfile.ZipFile, out: dict, url: str) -> None:
    """PUT one zip member to a presigned URL, streamed from disk with its Content-Length."""
    info = zf.getinfo(out["path"])

    def make() -> tuple[urllib.request.Request, Any]:
        body = zf.open(info)
        return urllib.request.Request(url, data=body, method="PUT", headers={
            "Content-Length": str(info.file_size), "Content-Type": "application/octet-stream"}), body

    _request(make, f"the object store refused {out['path']}", f"PUT {out['path']}")


# --- results to the data lake -----------------------------------------------------------------------------

def _publish_results(bundle: Bundle, rid: str, outputs: list[dict]) -> None:
    """Copy chosen outputs to S3 and/or Rucio; record locations; report errors without raising."""
    results = bundle.manifest.get("results") or {}
    if not outputs or not (results.get("s3") or results.get("rucio")):
        return
    patterns = results.get("outputs") or ["*"]
    chosen = [o for o in outputs
              if any(fnmatch.fnmatch(o["path"][len("outputs/"):], pat) for pat in patterns)]
    for out in chosen:
        local = bundle.root / out["path"]
        rel = out["path"][len("outputs/"):]
        sums = _checksums_of(local, ["sha256", "md5", "adler32"])
        for kind, target in (("s3", results.get("s3")), ("rucio", results.get("rucio"))):
            if not target:
                continue
            try:
                uri = (_put_s3 if kind == "s3" else _put_rucio)(target, rid, rel, local, sums)
                out.setdefault("locations", []).append({"uri": uri, "checksums": sums})
            except Exception as err:  # the return bundle must survive any data-lake failure
                print(f"nbpack: could not copy {out['path']} to {kind}: {err}")


def _put_s3(target: dict, rid: str, rel: str, local: Path, sums: dict) -> str:
    boto3 = _need("boto3", "results to S3", "pip install boto3")
    prefix = (target.get("prefix") or "").strip("/")
    key = "/".join(p for p in (prefix, rid, rel) if p)
    client = boto3.client("s3", endpoint_url=target.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL") or None)
    client.upload_file(str(local), target["bucket"], key, ExtraArgs={"Metadata": {"sha256": sums["sha256"]}})
    return f"s3://{target['bucket']}/{key}"


def _put_rucio(target: dict, rid: str, rel: str, local: Path, sums: dict) -> str:
    uploadclient = _need("rucio.client.uploadclient", "results to Rucio", "pip install rucio-clients")
    name = f"{rid}.{rel.replace('/', '.')}"
    uploadclient.UploadClient().upload([{"path": str(local), "rse": target["rse"], "did_scope": target["scope"],
                                         "did_name": name}])
    return f"{target['scope']}:{name}"

