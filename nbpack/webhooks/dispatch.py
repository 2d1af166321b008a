"""A replica's webhook sender: looks at the outbox in storage, claims what it may send, sends it fairly.

Fairness: at most ``webhook_workers`` attempts at once per replica, ``webhook_per_tenant`` per tenant and
``webhook_per_host`` per callback host (host and port). A notification whose tenant's or host's slots are taken
waits in storage, unclaimed, so a receiver that accepts connections and never answers holds only its own slots,
each for at most the connect and read timeouts, while every other tenant's notifications go out. A circuit
breaker per host (``breaker.py``) stops trying a failing host for a while. Outcomes are counted for /metrics;
logs name the callback without its query string, and never a secret or a signature.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from nbpack.config import Config
from nbpack.errors import InvalidInput, NbpackError
from nbpack.store.api import Storage
from nbpack.store.keys import WEBHOOK_PENDING, return_key, webhook_claim_prefix, webhook_key
from nbpack.webhooks import delivery, outbox, targets
from nbpack.webhooks.breaker import Breakers

__all__ = ["Dispatcher", "OUTCOMES"]

log = logging.getLogger("nbpack.webhooks")
OUTCOMES = ("delivered", "retried", "failed", "refused", "orphaned")
# A pending notification whose return never became visible (its ingest failed after writing it) is dropped after this.
ORPHAN_GRACE = 600.0
_MAX_BACKOFF = 300.0
_MAX_RETRY_AFTER = 3600.0


def backoff(attempt: int) -> float:
    """Seconds between the end of attempt ``attempt`` and the next: 1, 2, 4, … up to five minutes."""
    return float(min(_MAX_BACKOFF, 2 ** max(0, attempt - 1)))


class Dispatcher:
    """Sends the outbox's notifications from this replica; ``kick()`` after queueing one, ``counts()`` for metrics."""

    def __init__(self, storage: Storage, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.storage, self.config, self.clock = storage, config, clock
        # Without any tenant's secret no callback can be registered, so there is nothing to send.
        self.enabled = bool(config.webhook_secrets)
        self.breakers = Breakers(config.webhook_breaker_failures, config.webhook_breaker_cooldown)
        # Longer than any one attempt (each address's connect, then the read), so a live attempt keeps its lease.
        self.lease = 2 * (config.webhook_connect_timeout + config.webhook_timeout) + 5
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: set[tuple[str, str]] = set()
        self._tenants: Counter[str] = Counter()
        self._hosts: Counter[str] = Counter()
        self._ready: dict[tuple[str, str], float] = {}
        self._notices: dict[tuple[str, str], outbox.Notice] = {}
        self._counts = dict.fromkeys(OUTCOMES, 0)
        # Pending notifications at the last look (for /metrics: a growing backlog is a receiver in trouble).
        self.backlog = 0

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start looking at the outbox (once per process; a no-op when no tenant has a webhook secret)."""
        with self._lock:
            if not self.enabled or (self._thread is not None and self._thread.is_alive()):
                return
            self._stop.clear()
            self._pool = ThreadPoolExecutor(self.config.webhook_workers, thread_name_prefix="nbpack-webhook")
            self._thread = threading.Thread(target=self._loop, name="nbpack-webhook-outbox", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """Look at the outbox now (a notification was just queued here)."""
        self.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop looking; attempts under way finish on their own threads."""
        self._stop.set()
        self._wake.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def counts(self) -> dict[str, int]:
        """How many attempts ended each way since start (``retried``: failed, another will follow)."""
        with self._lock:
            return dict(self._counts)

    def open_circuits(self) -> int:
        """How many callback hosts this replica leaves alone now (their circuit is open)."""
        return len(self.breakers.open_hosts(self.clock()))

    def idle(self) -> bool:
        """True when nothing is being sent from this replica."""
        with self._lock:
            return not self._inflight

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before the look, so a kick during it wakes the next one at once (none is lost).
            self._wake.clear()
            try:
                self.scan()
            except Exception:  # a background thread has no caller: log, and look again next time
                log.exception("webhook outbox scan failed")
            self._wake.wait(self.config.webhook_poll)

    # -- choosing what to send -------------------------------------------------------------------

    def scan(self) -> int:
        """Start every attempt that is due and fits its slots; how many started."""
        now = self.clock()
        try:
            entries = outbox.waiting(self.storage)
        except NbpackError as exc:
            log.warning("webhook outbox unreadable", extra={"error": exc.message})
            return 0
        self.backlog = len(entries)
        live = {(w.hid, w.rid) for w in entries}
        with self._lock:
            for gone in [k for k in self._notices if k not in live]:
                self._notices.pop(gone, None)
                self._ready.pop(gone, None)
        started = 0
        for entry in entries:
            if len(self._inflight) >= self.config.webhook_workers or self._stop.is_set():
                break
            try:
                started += self._consider(entry, now)
            except NbpackError as exc:  # storage trouble with one entry: the others may still go
                log.warning("webhook outbox entry skipped", extra={"error": exc.message})
        return started

    def _consider(self, entry: outbox.Waiting, now: float) -> int:
        key = (entry.hid, entry.rid)
        if key in self._inflight or self._ready.get(key, 0.0) > now:
            return 0
        notice = self._notices.get(key) or outbox.load(self.storage, entry.hid, entry.rid)
        if notice is None:
            return 0
        self._notices[key] = notice
        try:
            parsed = targets.parse(notice.url)
            # A receiver is a host and port: two services on one machine are two receivers.
            host = f"{parsed.host}:{parsed.port}"
        except InvalidInput:
            host = "(invalid)"
        with self._lock:
            if self._tenants[notice.tenant] >= self.config.webhook_per_tenant:
                return 0
            if self._hosts[host] >= self.config.webhook_per_host:
                return 0
        if not self.storage.exists(return_key(entry.hid, entry.rid, "manifest.json")):
            self._orphan(entry, notice, now)
            return 0
        if not self.breakers.allow(host, now):
            return 0
        try:
            attempt = self._claim(entry, now)
        except BaseException:
            self.breakers.cancel(host)  # a probe granted but never started must not keep the host shut
            raise
        if attempt is None:
            self.breakers.cancel(host)
            return 0
        with self._lock:
            self._inflight.add(key)
            self._tenants[notice.tenant] += 1
            self._hosts[host] += 1
        assert self._pool is not None
        self._pool.submit(self._send, notice, host, attempt)
        return 1

    def _claim(self, entry: outbox.Waiting, now: float) -> int | None:
        """The attempt number this replica now holds for ``entry``, or None (not due, or taken elsewhere)."""
        got = outbox.claim(self.storage, entry.hid, entry.rid, lease=self.lease, backoff=backoff, now=now)
        if got.attempt is None:
            self._ready[(entry.hid, entry.rid)] = got.ready_at
            return None
        if not self.storage.exists(webhook_key(WEBHOOK_PENDING, entry.hid, entry.rid)):
            # Ended by another replica between the listing and the claim: the claim is litter.
            self.storage.delete_prefix(webhook_claim_prefix(entry.hid, entry.rid))
            return None
        return got.attempt

    def _orphan(self, entry: outbox.Waiting, notice: outbox.Notice, now: float) -> None:
        if now - entry.modified < ORPHAN_GRACE:
            self._ready[(entry.hid, entry.rid)] = now + self.config.webhook_poll
            return
        self.storage.delete(webhook_key(WEBHOOK_PENDING, entry.hid, entry.rid))
        self.storage.delete_prefix(webhook_claim_prefix(entry.hid, entry.rid))
        self._count("orphaned")
        log.info("webhook dropped: its return was never stored", extra={"delivery": notice.id})

    # -- sending ---------------------------------------------------------------------------------

    def _send(self, notice: outbox.Notice, host: str, attempt: int) -> None:
        key = (notice.hid, notice.rid)
        try:
            result = delivery.attempt(
                notice.url,
                notice.body.encode(),
                notice.id,
                self.config.webhook_secrets.get(notice.tenant, []),
                allow=self.config.webhook_allow.get(notice.tenant),
                local_mode=self.config.local_mode,
                connect_timeout=self.config.webhook_connect_timeout,
                timeout=self.config.webhook_timeout,
            )
            self._settle(notice, host, attempt, result)
        except Exception:  # the lease runs out and another attempt follows
            log.exception("webhook attempt failed unexpectedly", extra={"delivery": notice.id})
        finally:
            with self._lock:
                self._inflight.discard(key)
                self._tenants[notice.tenant] -= 1
                self._hosts[host] -= 1
            self._wake.set()

    def _settle(self, notice: outbox.Notice, host: str, attempt: int, result: delivery.Attempt) -> None:
        now = self.clock()
        sick = result.retry and (result.status is None or result.status >= 500 or result.status == 429)
        self.breakers.record(host, not sick, now)
        detail = {"attempts": attempt, "status": result.status, "error": result.error, "at": now}
        if result.ok:
            outbox.finish(self.storage, notice, "delivered", detail)
            self._count("delivered")
            log.info("webhook delivered", extra={"delivery": notice.id, "attempts": attempt, "status": result.status})
            return
        if result.retry and attempt < self.config.webhook_attempts:
            # A receiver's Retry-After is honoured up to an hour: it postpones only its own notifications.
            wait = max(min(result.retry_after or 0.0, _MAX_RETRY_AFTER), backoff(attempt))
            outbox.release(self.storage, notice.hid, notice.rid, attempt, wait, detail)
            self._ready[(notice.hid, notice.rid)] = now + wait
            self._count("retried")
            log.info("webhook attempt failed, will retry", extra=self._log_fields(notice, attempt, result))
            return
        outcome = "failed" if result.retry or result.status is not None else "refused"
        outbox.finish(self.storage, notice, outcome, detail)
        self._count(outcome)
        log.warning("webhook not delivered", extra={"outcome": outcome, **self._log_fields(notice, attempt, result)})

    def _log_fields(self, notice: outbox.Notice, attempt: int, result: delivery.Attempt) -> dict[str, object]:
        error = (result.error or "").replace(notice.url, delivery.redact_url(notice.url))
        return {
            "target": delivery.redact_url(notice.url),
            "tenant": notice.tenant,
            "delivery": notice.id,
            "attempts": attempt,
            "status": result.status,
            "error": error,
        }

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1
