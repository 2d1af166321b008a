"""The webhook outbox in storage: written with the return, delivered by whichever replica claims it first.

A return's notification is one object, ``webhooks/pending/<hid>/<rid>.json``, written create-once by the ingest
before the return becomes visible, so no answer is sent for a return whose notification is not stored. Each attempt
is a numbered claim, ``webhooks/claims/<hid>/<rid>/<n>``, created with ``put_if_absent``: of replicas racing for
attempt n exactly one gets it, and holds it as a lease until ``<n>.failed`` ends it early or ``lease`` seconds pass
(a replica killed mid-attempt). The notification ends once, delivered or given up, as ``webhooks/done/…``; then its
pending record and claims go. A re-sent upload finds ``done`` (or the pending record) and queues nothing new.

Times compare the storage's modification times with this replica's clock: replicas and storage keep time by NTP;
skew of a few seconds only moves a lease's end or a retry by as much.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from nbpack.clock import iso
from nbpack.errors import NotFound
from nbpack.store.api import Storage
from nbpack.store.keys import WEBHOOK_DONE, WEBHOOK_PENDING, webhook_claim_prefix, webhook_key
from nbpack.webhooks.signing import message_id

__all__ = [
    "Notice",
    "Claim",
    "Waiting",
    "notice_for",
    "enqueue",
    "waiting",
    "load",
    "claim",
    "release",
    "finish",
    "forget",
]

EVENT = "return.created"
_OWNER = f"{socket.gethostname()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Notice:
    """One notification: its ``webhook-id``, whose it is, where it goes and the exact body every attempt sends."""

    id: str
    tenant: str
    hid: str
    rid: str
    url: str
    body: str

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


@dataclass(frozen=True)
class Waiting:
    """A pending notification as a listing shows it."""

    hid: str
    rid: str
    modified: float


@dataclass(frozen=True)
class Claim:
    """Attempt number this replica now holds (None: not now), and when the notification may next be tried."""

    attempt: int | None
    ready_at: float
    attempts_before: int = 0


def notice_for(tenant: str, hid: str, rid: str, url: str, status: str, received: datetime) -> Notice:
    """The ``return.created`` notification of one return: Standard Webhooks' ``{type, timestamp, data}``, the tenant
    named inside what is signed (a tenant's receiver can tell another tenant's notification from its own)."""
    body = {
        "type": EVENT,
        "timestamp": iso(received),
        "data": {"tenant": tenant, "bundle_id": hid, "return_id": rid, "status": status},
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return Notice(message_id(EVENT, hid, rid), tenant, hid, rid, url, text)


def enqueue(storage: Storage, notice: Notice) -> bool:
    """Queue ``notice`` unless it is queued or done already; True when it is pending now."""
    done = webhook_key(WEBHOOK_DONE, notice.hid, notice.rid)
    if storage.exists(done):
        return False
    pending = webhook_key(WEBHOOK_PENDING, notice.hid, notice.rid)
    storage.put_if_absent(pending, notice.to_bytes())
    # Done between the look and the write (another replica ended it): what was just written would repeat it.
    if storage.exists(done):
        storage.delete(pending)
        return False
    return True


def waiting(storage: Storage) -> list[Waiting]:
    """Every pending notification, oldest first."""
    out = []
    for info in storage.list(WEBHOOK_PENDING):
        parts = info.key[len(WEBHOOK_PENDING) :].split("/")
        if len(parts) == 2 and parts[1].endswith(".json"):
            when = info.modified.timestamp() if info.modified else 0.0
            out.append(Waiting(parts[0], parts[1][: -len(".json")], when))
    return sorted(out, key=lambda w: (w.modified, w.hid, w.rid))


def load(storage: Storage, hid: str, rid: str) -> Notice | None:
    """A pending notification's record; None when it has ended meanwhile."""
    try:
        doc = json.loads(storage.read_bytes(webhook_key(WEBHOOK_PENDING, hid, rid)))
    except NotFound:
        return None
    return Notice(**{k: str(doc[k]) for k in ("id", "tenant", "hid", "rid", "url", "body")})


def claim(storage: Storage, hid: str, rid: str, *, lease: float, backoff: Callable[[int], float], now: float) -> Claim:
    """Take the next attempt of a notification when its last one has ended (failed, or its lease ran out) and its
    backoff has passed; create-once, so one replica at most holds an attempt."""
    prefix = webhook_claim_prefix(hid, rid)
    leases: dict[int, float] = {}
    ended: dict[int, tuple[float, float]] = {}
    for info in storage.list(prefix):
        name = info.key[len(prefix) :]
        when = info.modified.timestamp() if info.modified else now
        number, _, suffix = name.partition(".")
        if not number.isdigit():
            continue
        if suffix == "failed":
            try:
                wait = float(json.loads(storage.read_bytes(info.key)).get("wait", 0))
            except (NotFound, ValueError, AttributeError):
                wait = 0.0
            ended[int(number)] = (when, wait)
        elif not suffix:
            leases[int(number)] = when
    last = max(leases, default=0)
    if last:
        if last in ended:
            when, wait = ended[last]
            ready = when + max(wait, backoff(last))
        else:
            ready = _taken_at(storage, f"{prefix}{last}", leases[last]) + lease
        if now < ready:
            return Claim(None, ready, last)
    record = json.dumps({"owner": _OWNER, "at": now}).encode()
    if storage.put_if_absent(f"{prefix}{last + 1}", record):
        return Claim(last + 1, now, last)
    return Claim(None, now + 1.0, last + 1)


def _taken_at(storage: Storage, key: str, modified: float) -> float:
    """When the holder took its lease, on the holder's clock (the record's ``at``), as every claimer compares it with
    its own ``now``; the store's modified time is another clock (and ``now`` is injected in tests), so a claimer that
    listed just after a fresh claim could take the lease as already run out and claim the next attempt too."""
    try:
        return float(json.loads(storage.read_bytes(key))["at"])
    except (NotFound, ValueError, KeyError, TypeError):
        return modified


def release(storage: Storage, hid: str, rid: str, attempt: int, wait: float, detail: Mapping[str, object]) -> None:
    """End a failed attempt early so the next one may start after ``wait`` seconds (or the backoff, if longer)."""
    body = json.dumps({**detail, "wait": wait}, sort_keys=True, default=str).encode()
    storage.put_bytes(f"{webhook_claim_prefix(hid, rid)}{attempt}.failed", body)


def finish(storage: Storage, notice: Notice, outcome: str, detail: Mapping[str, object]) -> None:
    """Record the notification's end (``delivered`` or ``failed``) once, then drop its pending record and claims."""
    record = json.dumps({"id": notice.id, "outcome": outcome, **detail}, sort_keys=True, default=str).encode()
    storage.put_if_absent(webhook_key(WEBHOOK_DONE, notice.hid, notice.rid), record)
    storage.delete(webhook_key(WEBHOOK_PENDING, notice.hid, notice.rid))
    storage.delete_prefix(webhook_claim_prefix(notice.hid, notice.rid))


def forget(storage: Storage, hid: str) -> None:
    """Drop every outbox record of a handle being deleted: its returns go, so there is nothing left to announce."""
    for folder in (WEBHOOK_PENDING, WEBHOOK_DONE, "webhooks/claims/"):
        storage.delete_prefix(f"{folder}{hid}/")
