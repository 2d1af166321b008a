"""The storage key layout, defined once (design.md "Storage keys"): handles, shared content, returns, blobs, tenants."""

from __future__ import annotations

import hashlib
from typing import Any

from nbpack.errors import InvalidInput
from nbpack.ids import HANDLE as HANDLE_ID
from nbpack.ids import RETURN as RETURN_ID
from nbpack.ids import check_id

__all__ = [
    "BLOBS",
    "CONTENT",
    "EXTERNAL",
    "HANDLE",
    "HANDLES",
    "QUOTA",
    "RETURNS",
    "blob_key",
    "blob_prefix",
    "check_sha",
    "content_key",
    "handle_key",
    "handle_prefix",
    "idempotency_key",
    "idempotency_prefix",
    "immutable",
    "index_keys",
    "index_prefix",
    "is_content",
    "is_return_manifest",
    "owner_dir",
    "return_key",
    "quota_lock_key",
    "ledger_key",
    "quota_prefix",
    "return_objects_prefixes",
    "return_prefix",
    "split_ledger_key",
    "split_return_key",
    "split_usage_key",
    "upload_key",
    "upload_prefix",
    "usage_key",
    "usage_prefix",
    "webhook_claim_prefix",
    "webhook_key",
    "WEBHOOK_PENDING",
    "WEBHOOK_DONE",
]

EXTERNAL = "external.json"
HANDLE = "handle.json"
# The top-level folders (what gc lists whole).
HANDLES, CONTENT, RETURNS, BLOBS = "handles/", "content/", "returns/", "blobs/"
QUOTA = "quota/"  # handles' ledgers (and tombstones of deleted ones), tenants' quota locks
_INV_BASE = 10**13  # listing keys sort newest first: 13 digits of (this - created milliseconds)


def handle_key(hid: str, name: str) -> str:
    """Storage key of one of a handle's objects (handle.json, manifest.json, notebook.ipynb, head.bin, tail.bin)."""
    return f"{handle_prefix(hid)}{name}"


def handle_prefix(hid: str) -> str:
    """The folder of a handle's own objects."""
    check_id(hid, HANDLE_ID)
    return f"{HANDLES}{hid}/"


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
    return f"{CONTENT}{sha256}"


def is_content(key: str) -> bool:
    """True for the key of a shared content part (one a create may reuse and gc may remove)."""
    return key.startswith(CONTENT)


def return_key(bid: str, rid: str, name: str) -> str:
    """Storage key of one of a return's objects (return.zip, manifest.json)."""
    check_id(bid, HANDLE_ID)
    return f"{return_prefix(bid, rid)}{name}"


def return_prefix(bid: str, rid: str | None = None) -> str:
    """The folder of a handle's returns, or (``rid``) of one return."""
    check_id(bid, HANDLE_ID)
    if rid is None:
        return f"{RETURNS}{bid}/"
    check_id(rid, RETURN_ID)
    return f"{RETURNS}{bid}/{rid}/"


def split_return_key(key: str) -> tuple[str, str, str] | None:
    """(handle id, return id, name) of a key under ``returns/``, else None."""
    parts = key.split("/")
    if len(parts) != 4 or f"{parts[0]}/" != RETURNS:
        return None
    return parts[1], parts[2], parts[3]


def is_return_manifest(bid: str, key: str) -> bool:
    """True for the manifest of one of the handle's returns (what makes a return visible, and counts it)."""
    return key.startswith(return_prefix(bid)) and key.endswith("/manifest.json")


def blob_prefix(bid: str) -> str:
    """The folder of a handle's directly uploaded outputs."""
    check_id(bid, HANDLE_ID)
    return f"{BLOBS}{bid}/"


def return_objects_prefixes(bid: str) -> tuple[str, str]:
    """The folders holding what a handle's returns take up: returns and their directly uploaded blobs."""
    return return_prefix(bid), blob_prefix(bid)


def blob_key(bid: str, sha256: str) -> str:
    """Storage key of an output uploaded straight to the object store (content-addressed per handle)."""
    check_id(bid, HANDLE_ID)
    check_sha(sha256)
    return f"{blob_prefix(bid)}{sha256}"


def check_sha(sha256: Any) -> None:
    """400 unless ``sha256`` is 64 lowercase hex digits."""
    if not (isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")


def upload_prefix(bid: str, sha256: str) -> str:
    """The folder of the presigned uploads of one output."""
    check_sha(sha256)
    return f"{blob_prefix(bid)}uploads/{sha256}"


def upload_key(bid: str, sha256: str, nonce: str) -> str:
    """Storage key of one presigned upload of an output; verified uploads are copied to ``blob_key``."""
    return f"{upload_prefix(bid, sha256)}/{nonce}"


def owner_dir(owner: str) -> str:
    """The folder of an owner's index markers: a hash, as owner names are free text."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def usage_key(tenant: str, hid: str, what: str, size: int) -> str:
    """An empty marker charging ``size`` bytes of ``what`` (a bundle or a return id) to a tenant."""
    return f"{usage_prefix(tenant, hid, what)}{size}"


def usage_prefix(tenant: str, hid: str | None = None, what: str | None = None) -> str:
    """The markers charged to a tenant; (``hid``) for one handle; (``what``) for its bundle or one return."""
    prefix = f"tenants/{tenant}/usage/"
    if hid is None:
        return prefix
    return f"{prefix}{hid}/" if what is None else f"{prefix}{hid}/{what}."


def split_usage_key(key: str) -> tuple[str, str, int] | None:
    """(handle id, what, bytes) of a usage marker (``what``: ``bundle``, ``<rid>.<holder>``, ``ledger``), else
    None."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != "tenants" or parts[2] != "usage" or "." not in parts[4]:
        return None
    what, size = parts[4].rsplit(".", 1)
    if not size.isdigit():
        return None
    return parts[3], what, int(size)


def index_keys(state: dict[str, Any]) -> list[str]:
    """The empty markers that list a handle for its tenant (and its owner), newest first."""
    name = f"{_INV_BASE - state['created_ms']:013d}-{state['id']}"
    keys = [f"{index_prefix(state['tenant'])}{name}"]
    if state.get("owner"):
        keys.append(f"{index_prefix(state['tenant'], state['owner'])}{name}")
    return keys


def index_prefix(tenant: str, owner: str | None = None) -> str:
    """The folder of a tenant's listing markers (``index_keys``), or of one owner's; names end in the handle id."""
    if owner:
        return f"tenants/{tenant}/owners/{owner_dir(owner)}/"
    return f"tenants/{tenant}/index/"


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


def quota_lock_key(scope: str) -> str:
    """The create-only lock of one quota scope (``handle/<hid>``, ``tenant/<name>``): held for a check and a
    reservation, never while data is written (``store/reservations.py``)."""
    return f"quota/locks/{scope}"


def quota_prefix(hid: str) -> str:
    """The folder of a handle's quota state (its returns ledger), removed with the handle."""
    check_id(hid, HANDLE_ID)
    return f"quota/{hid}/"


def ledger_key(hid: str) -> str:
    """The handle's returns ledger: each return stored or being uploaded, with its bytes (``service/quota.py``);
    replaced only by compare-and-swap (``store/ledger.py``)."""
    return f"{quota_prefix(hid)}returns.json"


def split_ledger_key(key: str) -> str | None:
    """The handle id of a returns ledger's key (``ledger_key``), else None (a tenant's quota lock, say)."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != QUOTA or parts[2] != "returns.json":
        return None
    return parts[1]
