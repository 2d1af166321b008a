"""Limits, the clock and the retry pause every part of the runtime shares (the format's words are ``vocab``)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from .errors import FetchError

_T = TypeVar("_T")

__version__ = "1.0.0"


ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20
RETRIES = 4
TIMEOUT = 60
SCHEMES = ("https", "http", "davs", "s3", "root", "file")
DID = re.compile(r"^[A-Za-z0-9_.-]+:[^/].*$")


# The source of the one wall clock: nbpack's expiry, lifetimes and gc and the runtime's stamps read it; a test swaps
# it (``use_clock``, ``nbpack.clock.use``) instead of sleeping. Durations of work in progress use time.monotonic.
_source: Callable[[], float] = time.time


def timestamp() -> float:
    """Seconds since the epoch, from the clock in use."""
    return _source()


def now() -> _dt.datetime:
    """The current UTC time to the second: the one clock of the runtime and of nbpack (``nbpack.clock``)."""
    # timezone.utc, not datetime.UTC: hubs may run Python < 3.11
    return _dt.datetime.fromtimestamp(_source(), _dt.timezone.utc).replace(microsecond=0)  # noqa: UP017


@contextlib.contextmanager
def use_clock(source: Callable[[], float]) -> Iterator[None]:
    """Within the block, the time is what ``source`` answers (seconds since the epoch): tests move time on."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


def iso(when: _dt.datetime) -> str:
    """``when`` as bundles and the service store it: ISO 8601 with ``Z``."""
    return when.isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> _dt.datetime:
    """A stored timestamp back as an aware datetime (``fromisoformat`` reads ``Z`` only from Python 3.11)."""
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_iso() -> str:
    """The current time as stored."""
    return iso(now())


def retry_delay(attempt: int) -> float:
    # Tests shrink the base delay through the environment; hubs keep the default.
    base = float(os.environ.get("NBPACK_RETRY_DELAY", "0.5"))
    return min(base * (2**attempt), 10.0)


class Transient(Exception):
    """A failure worth another try (a 5xx answer, a dropped connection); its text says what happened."""


# What a request can raise when the network or the peer fails (after urllib's HTTPError, which is an answer): OSError
# covers refused, reset and timed-out connections and urllib's URLError; http.client's own exceptions cover an answer
# cut off mid-way (IncompleteRead, when a replica dies while answering) or never started (BadStatusLine).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


def with_retries(
    what: str, attempt: Callable[[], _T], *, error: type[Exception] = FetchError, attempts: int = RETRIES
) -> _T:
    """The runtime's one retry loop: run ``attempt`` up to ``attempts`` times while it raises Transient, pausing
    ``retry_delay`` between tries, then raise ``error`` naming ``what`` and the last failure. Anything else
    ``attempt`` raises (a 4xx as FetchError or UploadError) is final at once."""
    last: Exception | None = None
    for n in range(attempts):
        try:
            return attempt()
        except Transient as err:
            last = err
        if n + 1 < attempts:
            time.sleep(retry_delay(n))
    raise error(f"{what} failed after {attempts} attempts ({last})")
