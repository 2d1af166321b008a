"""Results to the data lake: chosen outputs copied to S3 and/or registered in Rucio."""

from __future__ import annotations

import fnmatch
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .base import NETWORK_ERRORS, TIMEOUT, Transient, with_retries
from .bundle import Bundle
from .checksums import checksums_of
from .display import need
from .errors import FetchError, RuntimeProblem, UploadError
from .fetch import bearer_token
from .rucio import (
    RUCIO_MAX_LINE,
    RUCIO_OPENER,
    RucioRefused,
    did_path,
    rucio_host,
    rucio_json,
    rucio_replicas,
    rucio_token,
)
from .session import STATE


def publish_results(bundle: Bundle, rid: str, outputs: list[dict]) -> None:
    """Copy chosen outputs to S3 and/or Rucio; record locations; report errors without raising."""
    results = bundle.manifest.get("results") or {}
    if not outputs or not (results.get("s3") or results.get("rucio")):
        return
    patterns = results.get("outputs") or ["*"]
    chosen = [o for o in outputs if any(fnmatch.fnmatch(o["path"][len("outputs/") :], pat) for pat in patterns)]
    for out in chosen:
        local = bundle.root / out["path"]
        rel = out["path"][len("outputs/") :]
        sums = checksums_of(local, ["sha256", "md5", "adler32"])
        for kind, target in (("s3", results.get("s3")), ("rucio", results.get("rucio"))):
            if not target:
                continue
            try:
                uri = (_put_s3 if kind == "s3" else _put_rucio)(target, rid, rel, local, sums)
                out.setdefault("locations", []).append({"uri": uri, "checksums": sums})
            except Exception as err:  # the return bundle must survive any data-lake failure
                print(f"nbpack: could not copy {out['path']} to {kind}: {err}")


def _put_s3(target: dict, rid: str, rel: str, local: Path, sums: dict) -> str:
    boto3 = need("boto3", "results to S3", "pip install boto3")
    prefix = (target.get("prefix") or "").strip("/")
    key = "/".join(p for p in (prefix, rid, rel) if p)
    client = boto3.client("s3", endpoint_url=target.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL") or None)
    client.upload_file(str(local), target["bucket"], key, ExtraArgs={"Metadata": {"sha256": sums["sha256"]}})
    return f"s3://{target['bucket']}/{key}"


def _put_rucio(target: dict, rid: str, rel: str, local: Path, sums: dict) -> str:
    """Upload one output to the RSE's storage, register its replica (bytes, adler32, md5), attach it to
    ``target["dataset"]`` if given; returns the DID. Re-running is harmless: Rucio's names are immutable."""
    host, token = rucio_host(), rucio_token()
    if not (host and token):
        raise RuntimeProblem(
            "results to Rucio need RUCIO_HOST and RUCIO_ACCESS_TOKEN (or RUCIO_TOKEN_FILE) set in the environment"
        )
    scope, rse = target["scope"], target["rse"]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{rid}.{rel.replace('/', '.')}")
    did = f"{scope}:{name}"
    file = {"scope": scope, "name": name, "bytes": local.stat().st_size, "adler32": sums["adler32"], "md5": sums["md5"]}
    if not _rucio_has_replica(host, token, did, file, rse):
        allow_http = bool(STATE.bundle and STATE.bundle.options.get("allow_http"))
        pfn = _rucio_write_pfn(host, token, rse, did, allow_http)
        _storage_put(pfn, local, file["bytes"])
        rucio_json(host, token, "POST", "/replicas", {"rse": rse, "files": [file]})
    # As Rucio's own upload does: a rule keeps the data (on the dataset when there is one, else on the file).
    dataset = target.get("dataset")
    if dataset:
        dataset = dataset if ":" in dataset else f"{scope}:{dataset}"
        if _rucio_add_dataset(host, token, dataset):
            _rucio_rule(host, token, dataset, rse, target.get("lifetime"))
        _rucio_attach(host, token, dataset, did)
    else:
        _rucio_rule(host, token, did, rse, target.get("lifetime"))
    return did


def _rucio_has_replica(host: str, token: str, did: str, file: dict, rse: str) -> bool:
    """True if ``did`` is already registered at ``rse`` with this content; refuses a DID with other content."""
    try:
        known = rucio_json(host, token, "GET", f"/dids/{did_path(did)}") or {}
    except RucioRefused as err:
        if err.status == 404:
            return False
        raise
    theirs = (known.get("bytes"), str(known.get("adler32") or "").zfill(8))
    if known.get("type") != "FILE" or theirs != (file["bytes"], file["adler32"]):
        raise UploadError(
            f"{did} already exists in Rucio with other content ({known.get('type')}, {theirs[0]} "
            f"bytes, adler32 {theirs[1]}); Rucio names cannot be reused"
        )
    try:
        records = rucio_replicas(host, token, did)
    except RucioRefused:
        raise
    except FetchError:  # registered, but no available replica anywhere yet
        return False
    return any(rse in (r.get("rses") or {}) for r in records)


def _rucio_write_pfn(host: str, token: str, rse: str, did: str, allow_http: bool) -> str:
    """Where Rucio wants ``did`` written on ``rse``: its best wan write protocol this runtime speaks, then
    ``lfns2pfns`` (the RSE's own lfn2pfn algorithm, so the path is the one Rucio will later list)."""
    rse_path = f"/rses/{urllib.parse.quote(rse, safe='')}"
    usable = ("davs", "https") + (("http",) if allow_http else ())
    protocols = rucio_json(host, token, "GET", f"{rse_path}/protocols") or []
    ranked = sorted(
        (p["domains"]["wan"]["write"], p["scheme"])
        for p in protocols
        if p.get("scheme") in usable and ((p.get("domains") or {}).get("wan") or {}).get("write")
    )
    if not ranked:
        offered = sorted({str(p.get("scheme")) for p in protocols})
        raise UploadError(
            f"RSE {rse} offers no write protocol this runtime can use ({', '.join(offered) or 'none'}; "
            "it writes davs, https"
            + (", http)" if allow_http else "; plain http needs options.allow_http in the bundle manifest)")
        )
    query = urllib.parse.urlencode({"lfn": did, "scheme": ranked[0][1], "operation": "write"})
    answer = rucio_json(host, token, "GET", f"{rse_path}/lfns2pfns?{query}")
    if not (isinstance(answer, dict) and isinstance(answer.get(did), str)):
        raise UploadError(f"Rucio gave no write path for {did} on {rse} ({str(answer)[:200]})")
    return answer[did]


def _storage_put(pfn: str, local: Path, size: int) -> None:
    """PUT the bytes where Rucio said (WebDAV/HTTP storage), streamed from disk; then check the stored size."""
    scheme = urllib.parse.urlsplit(pfn).scheme
    url = ("https" + pfn[len("davs") :]) if scheme == "davs" else pfn
    if scheme not in ("davs", "https", "http"):
        raise UploadError(f"cannot write to {pfn}: only davs://, https:// and http:// storage are supported")
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    token = bearer_token()
    if token and url.startswith("https://"):  # a storage token only over TLS (never to plain http)
        headers["Authorization"] = f"Bearer {token}"

    def put() -> None:
        try:
            with open(local, "rb") as body:
                req = urllib.request.Request(url, data=body, method="PUT", headers=headers)
                with RUCIO_OPENER.open(req, timeout=TIMEOUT) as resp:
                    resp.read(RUCIO_MAX_LINE)
        except urllib.error.HTTPError as err:
            if err.code < 500:
                raise UploadError(f"the storage refused PUT {url} (HTTP {err.code} {err.reason})") from None
            raise Transient(f"HTTP {err.code} {err.reason}") from None
        except NETWORK_ERRORS as err:
            raise Transient(str(getattr(err, "reason", err))) from None

    with_retries(f"PUT {url}", put, error=UploadError)
    head = {k: v for k, v in headers.items() if k == "Authorization"}
    with RUCIO_OPENER.open(urllib.request.Request(url, method="HEAD", headers=head), timeout=TIMEOUT) as resp:
        stored = resp.headers.get("Content-Length")
    if stored is not None and int(stored) != size:
        raise UploadError(f"the storage holds {stored} bytes at {url}, {size} were sent")


def _rucio_account(host: str, token: str) -> str:
    """The account the token belongs to: ``/accounts/whoami`` answers 303 to ``/accounts/<account>``."""
    try:
        answer = rucio_json(host, token, "GET", "/accounts/whoami")
    except RucioRefused as err:
        location = err.location if err.status in (301, 302, 303) else ""
        if location:
            return urllib.parse.unquote(location.rstrip("/").rsplit("/", 1)[-1])
        raise
    if isinstance(answer, dict) and answer.get("account"):
        return str(answer["account"])
    raise UploadError(f"Rucio at {host} did not say which account the token belongs to")


def _rucio_rule(host: str, token: str, did: str, rse: str, lifetime: int | None) -> None:
    """One replication rule on ``rse`` for ``did``; a rule already there (an earlier run) is fine."""
    scope, name = did.split(":", 1)
    try:
        rucio_json(
            host,
            token,
            "POST",
            "/rules/",
            {
                "dids": [{"scope": scope, "name": name}],
                "account": _rucio_account(host, token),
                "copies": 1,
                "rse_expression": rse,
                "grouping": "DATASET",
                "lifetime": lifetime,
            },
        )
    except RucioRefused as err:
        if err.exc_class != "DuplicateRule":
            raise UploadError(f"{did} is registered, but Rucio refused a rule keeping it on {rse}: {err}") from None


def _rucio_add_dataset(host: str, token: str, dataset: str) -> bool:
    """Create ``dataset``; False if it already exists."""
    try:
        rucio_json(host, token, "POST", f"/dids/{did_path(dataset)}", {"type": "DATASET"})
    except RucioRefused as err:
        if err.exc_class != "DataIdentifierAlreadyExists":
            raise
        return False
    return True


def _rucio_attach(host: str, token: str, dataset: str, did: str) -> None:
    """Attach ``did`` to ``dataset``."""
    scope, name = did.split(":", 1)
    try:
        rucio_json(host, token, "POST", f"/dids/{did_path(dataset)}/dids", {"dids": [{"scope": scope, "name": name}]})
    except RucioRefused as err:
        if err.exc_class != "FileAlreadyExists":  # attached by an earlier run
            raise
