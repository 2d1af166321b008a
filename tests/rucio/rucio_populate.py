#!/usr/bin/env python3
"""Populate a freshly bootstrapped Rucio server through its REST API (rucio.client).

Creates RSE LOCAL-DISK (deterministic, http protocol -> serve_storage.py under /rucio/) and FAR-DISK (the same
storage server under /far/), scope `escape`, two files with real adler32/md5/bytes and a replica on each RSE,
one dataset holding both, a container holding the dataset, and `bad.dat` whose stored bytes differ from its
registered checksums; gives account root a quota on both RSEs; places the bytes where the returned PFN points
(so the PFN really downloads).

Env: RUCIO_CONFIG=<client cfg>, HTTP_PORT, STORAGE_DIR (root served by serve_storage.py),
     STORAGE_SCHEME (http | https, default http), STORAGE_CA (PEM to trust for https).
Prints one JSON line with what was registered.
"""

import hashlib
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request
import zlib

from rucio.client.accountclient import AccountClient
from rucio.client.didclient import DIDClient
from rucio.client.replicaclient import ReplicaClient
from rucio.client.rseclient import RSEClient
from rucio.client.scopeclient import ScopeClient
from rucio.common.exception import Duplicate

RSE = os.environ.get("RUCIO_RSE", "LOCAL-DISK")
SCOPE = os.environ.get("RUCIO_SCOPE", "escape")
HTTP_PORT = int(os.environ["HTTP_PORT"])
STORAGE = os.environ["STORAGE_DIR"]
PREFIX = "/rucio/"  # path prefix under the http server root
SCHEME = os.environ.get("STORAGE_SCHEME", "http")
SSL_CTX = ssl.create_default_context(cafile=os.environ["STORAGE_CA"]) if SCHEME == "https" else None

FILES = {
    "file1.txt": b"Hello ESCAPE data lake\n" * 100,
    "file2.dat": bytes(range(256)) * 40,
}
DATASET = "demo-dataset"
CONTAINER = "demo-container"
FAR_RSE = "FAR-DISK"
BAD = {"bad.dat": (b"what Rucio was told\n" * 50, b"what the disk holds\n" * 50)}


def adler32_hex(data: bytes) -> str:
    # Rucio's own format: 8 lower-case hex digits, zero padded
    return "%08x" % (zlib.adler32(data) & 0xFFFFFFFF)


def add_rse(rse_c: RSEClient, rse: str, prefix: str) -> None:
    try:
        rse_c.add_rse(rse, deterministic=True)
    except Duplicate:
        pass
    try:
        rse_c.add_protocol(
            rse,
            {
                "scheme": SCHEME,
                "hostname": "127.0.0.1",
                "port": HTTP_PORT,
                "prefix": prefix,
                "impl": "rucio.rse.protocols.webdav.Default",
                "domains": {
                    "lan": {"read": 1, "write": 1, "delete": 1},
                    "wan": {
                        "read": 1,
                        "write": 1,
                        "delete": 1,
                        "third_party_copy_read": 1,
                        "third_party_copy_write": 1,
                    },
                },
            },
        )
    except Duplicate:
        pass


def place(rep_c: ReplicaClient, rse: str, blobs: dict[str, bytes]) -> None:
    """Write each file's bytes where the server says its replica on ``rse`` lives."""
    for rep in rep_c.list_replicas([{"scope": SCOPE, "name": n} for n in blobs], schemes=[SCHEME], rse_expression=rse):
        pfn = rep["rses"][rse][0]
        path = urllib.parse.urlparse(pfn).path  # /rucio/escape/xx/yy/name
        dest = os.path.join(STORAGE, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as fh:
            fh.write(blobs[rep["name"]])
        got = urllib.request.urlopen(pfn, timeout=5, context=SSL_CTX).read()
        assert got == blobs[rep["name"]], (pfn, rep)


def main() -> None:
    rse_c, scope_c, rep_c, did_c = RSEClient(), ScopeClient(), ReplicaClient(), DIDClient()
    add_rse(rse_c, RSE, PREFIX)
    add_rse(rse_c, FAR_RSE, "/far/")
    for rse in (RSE, FAR_RSE):  # a quota, as users have: rules (Rucio's upload makes one) need it
        AccountClient().set_local_account_limit("root", rse, 10**12)
    try:
        scope_c.add_scope("root", SCOPE)
    except Duplicate:
        pass

    files = []
    for name, data in FILES.items():
        files.append(
            {
                "scope": SCOPE,
                "name": name,
                "bytes": len(data),
                "adler32": adler32_hex(data),
                "md5": hashlib.md5(data).hexdigest(),
                "meta": {"events": 10},
            }
        )
    rep_c.add_replicas(rse=RSE, files=files)
    rep_c.add_replicas(rse=FAR_RSE, files=files)
    place(rep_c, RSE, FILES)
    place(rep_c, FAR_RSE, FILES)
    for name, (told, held) in BAD.items():
        rep_c.add_replicas(
            rse=FAR_RSE,
            files=[
                {
                    "scope": SCOPE,
                    "name": name,
                    "bytes": len(told),
                    "adler32": adler32_hex(told),
                    "md5": hashlib.md5(told).hexdigest(),
                }
            ],
        )
        place(rep_c, FAR_RSE, {name: held})

    try:
        did_c.add_dataset(SCOPE, DATASET, rse=RSE)
    except Duplicate:
        pass
    did_c.attach_dids(SCOPE, DATASET, [{"scope": SCOPE, "name": n} for n in FILES])
    try:
        did_c.add_container(SCOPE, CONTAINER)
    except Duplicate:
        pass
    did_c.attach_dids(SCOPE, CONTAINER, [{"scope": SCOPE, "name": DATASET}])
    print(
        json.dumps(
            {
                "rse": RSE,
                "far_rse": FAR_RSE,
                "scope": SCOPE,
                "dataset": DATASET,
                "container": CONTAINER,
                "files": files,
                "bad": sorted(BAD),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
