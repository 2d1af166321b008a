"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers a notification is sent with.

The ``standardwebhooks`` library signs, so the bytes signed are exactly what ESAP's receiver, using the same library,
checks: ``f"{webhook-id}.{webhook-timestamp}.".encode() + body`` under HMAC-SHA256, sent as ``v1,<base64>``. One
signature per secret of the tenant (space separated), so a receiver keeps verifying during a secret rotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from nbpack.errors import InvalidInput

__all__ = ["ID_HEADER", "TIMESTAMP_HEADER", "SIGNATURE_HEADER", "signer", "signed_headers", "message_id"]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def signer(secret: str) -> Webhook:
    """The library's signer for one secret: ``whsec_<base64>`` is its decoded bytes (the specification's form); any
    other string (the older ``NBPACK_WEBHOOK_SECRET``) is its UTF-8 bytes, as a receiver passing ``secret.encode()``
    to ``Webhook`` reads it."""
    if not secret:
        raise InvalidInput("webhook secret is empty")
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def message_id(*parts: str) -> str:
    """The ``webhook-id`` of one notification: derived from what it announces, so every replica and every retried
    upload names it alike and the receiver deduplicates on it."""
    return "msg_" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def signed_headers(secrets: Sequence[str], msg_id: str, body: bytes, when: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``; signed afresh per attempt (a new timestamp, same id)."""
    if not secrets:
        raise InvalidInput("no webhook secret for this tenant")
    stamp = (when or datetime.now(UTC)).replace(microsecond=0)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(stamp.timestamp())),
        SIGNATURE_HEADER: " ".join(signer(s).sign(msg_id, stamp, body) for s in secrets),
    }
