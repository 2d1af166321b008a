"""Signed notifications to ESAP: HMAC-SHA256 over timestamp and body, delivered with bounded retries.

The signature header follows the Stripe convention: ``t=<unix seconds>,v1=<hex hmac>`` where the HMAC
key is the shared secret and the message is ``f"{t}.".encode() + body``. Putting the timestamp inside the
signed message lets the receiver refuse replays of an old delivery. See docs/esap.md for the receiver side.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nbpack.errors import InvalidInput

__all__ = [
    "SIGNATURE_HEADER",
    "EVENT_HEADER",
    "DELIVERY_HEADER",
    "DeliveryResult",
    "sign",
    "verify",
    "deliver",
    "deliver_async",
    "Notifier",
    "redact_url",
]

log = logging.getLogger("nbpack.webhooks.delivery")

SIGNATURE_HEADER = "X-Nbpack-Signature"
EVENT_HEADER = "X-Nbpack-Event"
DELIVERY_HEADER = "X-Nbpack-Delivery"
DEFAULT_EVENT = "return.created"
_MAX_SLEEP = 30.0


@dataclass
class DeliveryResult:
    """Outcome of one notification: every attempt shares ``delivery_id``."""

    ok: bool
    delivery_id: str
    attempts: int
    status: int | None = None
    error: str | None = None
    elapsed: float = 0.0


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Signature header value ``t=<ts>,v1=<hex hmac-sha256 of "<ts>." + body>``."""
    if not secret:
        raise InvalidInput("webhook secret is empty")
    return f"t={int(timestamp)},v1={_digest(secret, body, int(timestamp))}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: int | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` s."""
    if not secret or not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    # compare against every v1 so a receiver can accept signatures during a secret rotation
    return any(hmac.compare_digest(expected, c) for c in candidates)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without body; a webhook must not be silently rewritten
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook URL must be http or https with a host: {url!r}")


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def deliver(
    url: str,
    payload: dict,
    secret: str,
    *,
    attempts: int = 5,
    backoff: float = 0.5,
    timeout: float = 10,
    event: str | None = None,
    delivery_id: str | None = None,
    max_time: float = 120,
) -> DeliveryResult:
    """POST ``payload`` as signed JSON; retry connection errors, 5xx and 429 with exponential backoff."""
    _check_url(url)
    if not secret:
        raise InvalidInput("webhook secret is empty")
    attempts = max(1, int(attempts))
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    delivery = delivery_id or f"d-{uuid.uuid4().hex}"
    kind = event or str(payload.get("event") or DEFAULT_EVENT)
    start = time.monotonic()
    deadline = start + max_time
    status: int | None = None
    error: str | None = None
    for attempt in range(1, attempts + 1):
        wait: float | None = None
        # re-sign each attempt so a retry after a long backoff is not refused as stale
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "nbpack-webhook/1",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            EVENT_HEADER: kind,
            DELIVERY_HEADER: delivery,
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        per_try = max(0.1, min(timeout, deadline - time.monotonic()))
        try:
            with _opener.open(request, timeout=per_try) as response:
                status = response.status
                response.read(65536)
            return DeliveryResult(True, delivery, attempt, status, None, time.monotonic() - start)
        except urllib.error.HTTPError as err:
            status, error = err.code, f"HTTP {err.code}"
            err.close()
            if not (err.code >= 500 or err.code == 429):
                break
            wait = _retry_after(err) if err.code == 429 else None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            status = None
            error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt == attempts:
            break
        delay = min(_MAX_SLEEP, wait if wait is not None else backoff * 2 ** (attempt - 1))
        if time.monotonic() + delay >= deadline:
            break
        time.sleep(delay)
    return DeliveryResult(False, delivery, attempt, status, error, time.monotonic() - start)


def deliver_async(
    url: str,
    payload: dict,
    secret: str,
    *,
    on_done: Callable[[DeliveryResult], None] | None = None,
    **options: object,
) -> threading.Thread:
    """Run :func:`deliver` on a daemon thread so a request handler never waits; returns the started thread."""
    _check_url(url)
    options.setdefault("delivery_id", f"d-{uuid.uuid4().hex}")

    def run() -> None:
        try:
            result = deliver(url, payload, secret, **options)  # type: ignore[arg-type]
        except Exception as err:  # a background thread has no caller to raise to
            result = DeliveryResult(False, str(options["delivery_id"]), 0, None, str(err))
        if on_done is not None:
            on_done(result)

    thread = threading.Thread(target=run, name="nbpack-webhook", daemon=True)
    thread.start()
    return thread


def redact_url(url: str) -> str:
    """A callback URL fit for logs: scheme, host, port and path; no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(unparseable URL)"


class Notifier:
    """Delivers webhooks on a fixed pool of threads behind a bounded queue; never raises to its caller.

    A slow or dead receiver holds at most ``workers`` threads; what does not fit in the queue is dropped. Each
    outcome is counted (``counts()``, shown in /metrics) and every undelivered webhook is logged without its
    signature, secret or query string.
    """

    OUTCOMES = ("delivered", "failed", "dropped", "invalid")

    def __init__(self, workers: int = 4, queue_size: int = 100, **options: object) -> None:
        self.workers = max(1, int(workers))
        self.options = options
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._counts = dict.fromkeys(self.OUTCOMES, 0)

    def counts(self) -> dict[str, int]:
        """How many webhooks ended each way since start."""
        with self._lock:
            return dict(self._counts)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def submit(self, url: str, payload: dict, secret: str) -> bool:
        """Queue one notification; False (logged and counted) when it is invalid or the queue is full."""
        delivery = f"d-{uuid.uuid4().hex}"
        try:
            _check_url(url)
            if not secret:
                raise InvalidInput("webhook secret is empty")
        except InvalidInput as exc:
            self._failed("invalid", url, delivery, error=exc.message.replace(url, redact_url(url)))
            return False
        try:
            self._queue.put_nowait((url, payload, secret, delivery))
        except queue.Full:
            self._failed("dropped", url, delivery, error=f"the webhook queue is full ({self._queue.maxsize})")
            return False
        self._start_workers()
        return True

    def _start_workers(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="nbpack-webhook", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            url, payload, secret, delivery = self._queue.get()
            try:
                try:
                    result = deliver(url, payload, secret, delivery_id=delivery, **self.options)  # type: ignore
                except Exception as exc:  # a worker thread has no caller to raise to
                    result = DeliveryResult(False, delivery, 0, None, type(exc).__name__)
                if result.ok:
                    self._count("delivered")
                else:
                    self._failed("failed", url, delivery, result)
            finally:
                self._queue.task_done()

    def _failed(
        self, outcome: str, url: str, delivery: str, result: DeliveryResult | None = None, error: str | None = None
    ) -> None:
        self._count(outcome)
        text = (error or "") if result is None else (result.error or "")
        # urllib's messages name no URL today; make sure a query string never reaches the log if one does.
        text = text.replace(url, redact_url(url))
        log.warning(
            "webhook not delivered",
            extra={
                "outcome": outcome,
                "target": redact_url(url),
                "delivery": delivery,
                "attempts": result.attempts if result else 0,
                "status": result.status if result else None,
                "error": text,
            },
        )

    def join(self, timeout: float) -> bool:
        """Wait (bounded) until the queue is empty and every worker idle; True when it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False
