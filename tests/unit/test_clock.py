"""nbpack/clock.py: the one wall clock, injectable, and timestamps as stored (UTC, whole seconds, ``Z``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from nbpack import clock


def test_now_is_utc_to_the_second_and_round_trips_through_iso() -> None:
    before = time.time()
    now = clock.now()
    assert now.tzinfo is UTC and now.microsecond == 0 and before - 1 < now.timestamp() <= time.time()
    text = clock.iso(now)
    assert text.endswith("Z") and "+" not in text and clock.parse_iso(text) == now


def test_an_aware_time_elsewhere_is_the_same_instant() -> None:
    amsterdam = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    assert clock.parse_iso(clock.iso(amsterdam.astimezone(UTC))) == amsterdam


def test_use_injects_a_clock_and_restores_the_real_one() -> None:
    with clock.use(lambda: 1_790_000_000.75):
        assert clock.timestamp() == 1_790_000_000.75
        assert clock.iso(clock.now()) == "2026-09-21T14:13:20Z"  # whole seconds
        with clock.use(lambda: 0.0):
            assert clock.now() == datetime(1970, 1, 1, tzinfo=UTC)
        assert clock.timestamp() == 1_790_000_000.75
    assert abs(clock.timestamp() - time.time()) < 5


def test_the_clock_fixture_moves_only_when_told(clock) -> None:  # noqa: ANN001 - tests/conftest.py's FakeClock
    from nbpack import clock as nbpack_clock

    start = nbpack_clock.now()
    assert nbpack_clock.now() == start
    clock.advance(3600.5)
    assert nbpack_clock.now() - start == timedelta(seconds=3600)
