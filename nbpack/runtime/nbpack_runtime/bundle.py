"""The opened bundle: manifest, catalogs (Arrow, pandas, astropy) and file references."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .astropy_table import to_astropy
from .checksums import file_sha256
from .display import need
from .errors import ChecksumMismatch, FetchError, RuntimeProblem
from .fetch import fetch_into_cache
from .lazy import read_lazy, read_local
from .refs import FileRef, cache_path
from .remote import check_remote
from .rucio import fetch_collection, fetch_replica, rucio_client_download, rucio_host, rucio_replicas, rucio_token


class Bundle:
    """The opened bundle: manifest, catalogs and file references."""

    def __init__(self, root: Path, manifest: dict, remote: dict | None = None) -> None:
        self.root = root
        self.manifest = manifest
        # Where catalogs this folder lacks are read from (nbpack.remote.json of a thin tree), or None.
        self.remote = check_remote(remote, "the remote document") if remote is not None else None
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

    def catalog(self, name: str, as_: str = "arrow", columns: list[str] | None = None, filter: Any = None) -> Any:
        """Load a catalog as a pyarrow Table, pandas DataFrame or astropy Table (units applied).

        ``columns``: only these columns; ``filter``: only the rows it keeps (pyarrow's ``filters``, DNF form such as
        ``[("mag", "<", 18)]``). A catalog this folder lacks is read from the service (``nbpack.remote.json``):
        only the blocks those columns and row groups need, each verified, cached under ``NBPACK_CACHE``.
        """
        if name not in self._catalog_entries:
            raise RuntimeProblem(f"no catalog named {name!r}; this bundle has: {', '.join(self.catalogs) or 'none'}")
        entry = self._catalog_entries[name]
        path = self.root / entry["path"]
        if path.is_file():
            if name in self._verified:
                table = read_local(path, columns, filter)
            else:
                table = self._read_verified(name, path, entry["sha256"], columns, filter)
                self._verified.add(name)
        elif self.remote is not None:
            table = read_lazy(entry, self.manifest, self.remote, self.root, columns, filter)
        else:
            raise RuntimeProblem(f"catalog {name!r}: {entry['path']} is missing from the bundle folder")
        if as_ == "arrow":
            return table
        if as_ == "pandas":
            need("pandas", "catalog(as_='pandas')", "pip install pandas")
            return table.to_pandas()
        if as_ == "astropy":
            return to_astropy(table, entry)
        raise RuntimeProblem(f"catalog as_={as_!r} is not one of 'arrow', 'pandas', 'astropy'")

    @staticmethod
    def _read_verified(name: str, path: Path, expected: str, columns: list[str] | None, filters: Any) -> Any:
        """Read a catalog while its sha256 is computed in a thread: the check then costs ~nothing extra."""
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            digest = pool.submit(file_sha256, path)
            try:
                table = read_local(path, columns, filters)
            except RuntimeProblem:
                raise
            except Exception:
                # A damaged file is reported as a checksum problem, not as whatever Parquet made of it.
                table = None
            got = digest.result()
        if got != expected:
            raise ChecksumMismatch(f"catalog {name!r}: sha256 expected {expected}, got {got}")
        return table if table is not None else read_local(path, columns, filters)

    # Files ---------------------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """Fetch (once, into the shared cache), verify and return the local path of a referenced file."""
        if name not in self.files:
            raise RuntimeProblem(f"no file named {name!r}; this bundle has: {', '.join(self.files) or 'none'}")
        ref = self.files[name]
        allow_http = bool(self.options.get("allow_http"))
        if not ref.is_did:
            path = fetch_into_cache(ref, [ref.uri], ref.checksums, ref.size, allow_http)
            self.fetched[name] = {"uri": ref.uri}
            return path
        return self._fetch_did(ref, allow_http)

    def _fetch_did(self, ref: FileRef, allow_http: bool) -> Path:
        """A file DID → its verified local copy; a dataset or container DID → a folder of its verified files."""
        cached = cache_path(ref)
        if cached.is_file():
            return cached
        try:
            import rucio.client.downloadclient  # noqa: F401

            has_client = True
        except ImportError:
            has_client = False
        host, token = rucio_host(), rucio_token()
        if has_client and not (host and token):
            path, self.fetched[ref.name] = rucio_client_download(ref, ref.checksums)
            return path
        if not (host and token):
            raise FetchError(
                f"{ref.name}: {ref.uri} is a Rucio DID; install the Rucio client (pip install rucio-clients) or set "
                "RUCIO_HOST and RUCIO_ACCESS_TOKEN (or RUCIO_TOKEN_FILE) to resolve it through Rucio's REST API"
            )
        try:
            records = rucio_replicas(host, token, ref.uri)
        except FetchError as err:
            raise FetchError(f"{ref.name}: {err}") from None
        scope, name = ref.uri.split(":", 1)
        if len(records) == 1 and (records[0].get("scope"), records[0].get("name")) == (scope, name):
            path, used = fetch_replica(ref, records[0], allow_http)
            self.fetched[ref.name] = used
            return path
        folder, files = fetch_collection(ref, records, allow_http)
        self.fetched[ref.name] = {"uri": ref.uri, "files": files}
        return folder

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
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return text, f"<table>{cells}</table>"
