"""The storage key layout, defined once (design.md "Storage keys"): handles, shared content, returns, blobs, tenants."""

from __future__ import annotations

import hashlib
from typing import Any

from nbpack.errors import InvalidInput
from nbpack.ids import HANDLE as HANDLE_ID
from nbpack.ids import RETURN as RETURN_ID
from nbpack.ids import check_id

__all__ = [
    "EXTERNAL",
    "HANDLE",
    "blob_key",
    "check_sha",
    "content_key",
    "handle_key",
    "idempotency_key",
    "idempotency_prefix",
    "immutable",
    "index_keys",
    "owner_dir",
    "return_key",
    "upload_key",
    "upload_prefix",
    "usage_key",
    "webhook_claim_prefix",
    "webhook_key",
    "WEBHOOK_PENDING",
    "WEBHOOK_DONE",
]

EXTERNAL = "external.json"
HANDLE = "handle.json"
_INV_BASE = 10**13  # listing keys sort newest first: 13 digits of (this - created milliseconds)


def handle_key(hid: str, name: str) -> str:
    """Storage key of one of a handle's objects (handle.json, manifest.json, notebook.ipynb, head.bin, tail.bin)."""
    check_id(hid, HANDLE_ID)
    return f"handles/{hid}/{name}"


# A handle's objects written once at its creation; its handle.json is not one of them (rewritten by extend,
# deleted to revoke).
_HANDLE_IMMUTABLE = ("manifest.json", "notebook.ipynb", "head.bin", "tail.bin")


def immutable(key: str) -> bool:
    """True for keys whose bytes never change once written (what a worker may cache)."""
    parts = key.split("/")
    if len(parts) == 2 and parts[0] == "content":
        return True
    return len(parts) == 3 and parts[0] == "handles" and parts[2] in _HANDLE_IMMUTABLE


def content_key(sha256: str) -> str:
    """Storage key of a shared, content-addressed zip member record."""
    check_sha(sha256)
    return f"content/{sha256}"


def return_key(bid: str, rid: str, name: str) -> str:
    """Storage key of one of a return's objects (return.zip, manifest.json)."""
    check_id(bid, HANDLE_ID)
    check_id(rid, RETURN_ID)
    return f"returns/{bid}/{rid}/{name}"


def blob_key(bid: str, sha256: str) -> str:
    """Storage key of an output uploaded straight to the object store (content-addressed per handle)."""
    check_id(bid, HANDLE_ID)
    check_sha(sha256)
    return f"blobs/{bid}/{sha256}"


def check_sha(sha256: Any) -> None:
    """400 unless ``sha256`` is 64 lowercase hex digits."""
    if not (isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")


def upload_prefix(bid: str, sha256: str) -> str:
    """The folder of the presigned uploads of one output."""
    return blob_key(bid, sha256).replace(f"blobs/{bid}/", f"blobs/{bid}/uploads/", 1)


def upload_key(bid: str, sha256: str, nonce: str) -> str:
    """Storage key of one presigned upload of an output; verified uploads are copied to ``blob_key``."""
    return f"{upload_prefix(bid, sha256)}/{nonce}"


def owner_dir(owner: str) -> str:
    """The folder of an owner's index markers: a hash, as owner names are free text."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def usage_key(tenant: str, hid: str, what: str, size: int) -> str:
    """An empty marker charging ``size`` bytes of ``what`` (a bundle or a return id) to a tenant."""
    return f"tenants/{tenant}/usage/{hid}/{what}.{size}"


def index_keys(state: dict[str, Any]) -> list[str]:
    """The empty markers that list a handle for its tenant (and its owner), newest first."""
    name = f"{_INV_BASE - state['created_ms']:013d}-{state['id']}"
    keys = [f"tenants/{state['tenant']}/index/{name}"]
    if state.get("owner"):
        keys.append(f"tenants/{state['tenant']}/owners/{owner_dir(state['owner'])}/{name}")
    return keys


# The webhook outbox (nbpack/webhooks/outbox.py): a notification waits under pending/ until some replica ends it,
# delivered or given up, under done/ (which a re-sent upload reads so it neither loses nor repeats it).
WEBHOOK_PENDING = "webhooks/pending/"
WEBHOOK_DONE = "webhooks/done/"


def webhook_key(folder: str, hid: str, rid: str) -> str:
    """The outbox record of the notification of return ``rid`` of handle ``hid``, in ``WEBHOOK_PENDING`` or
    ``WEBHOOK_DONE``."""
    if folder not in (WEBHOOK_PENDING, WEBHOOK_DONE):
        raise ValueError(f"no webhook folder {folder!r}")
    check_id(hid, HANDLE_ID)
    check_id(rid, RETURN_ID)
    return f"{folder}{hid}/{rid}.json"


def webhook_claim_prefix(hid: str, rid: str) -> str:
    """The folder of one notification's numbered claims: ``<n>`` is attempt n's lease, ``<n>.failed`` ends it."""
    check_id(hid, HANDLE_ID)
    check_id(rid, RETURN_ID)
    return f"webhooks/claims/{hid}/{rid}/"


def idempotency_prefix(tenant: str) -> str:
    """The folder of a tenant's remembered creates (``Idempotency-Key``), swept after 24 h."""
    return f"tenants/{tenant}/idempotency/"


def idempotency_key(tenant: str, key: str) -> str:
    """Storage key of one remembered create: a hash of the client's key, which is free text."""
    return idempotency_prefix(tenant) + hashlib.sha256(key.encode()).hexdigest()
