"""Hypothesis profiles of the suite, registered by tests/conftest.py, and how a test scales its example count.

- ``dev``: the default for a local run, small so the unit tier stays fast (< 60 s on 2 cores);
- ``ci``: loaded when ``CI=true``; ``derandomize=True`` so CI draws the same cases on every run and main is never
  red by chance (a case found failing once is kept as an ``@example`` beside its test);
- ``random``: wide and random, for hunting (``pytest --hypothesis-profile=random``; ``NBPACK_FUZZ_EXAMPLES``
  scales the fuzzers further).

A property whose every case is expensive (a whole create through the app) asks for ``examples(share)`` of the
profile's count rather than a number of its own, so one profile choice scales every test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Each built on Hypothesis' own "default": Hypothesis loads a derandomized profile by itself when it sees CI set, and a
# profile made from whatever is loaded at import would inherit that.
_BASE = settings.get_profile("default")
PROFILES = {
    "dev": settings(_BASE, max_examples=30, deadline=None, derandomize=False),
    "ci": settings(_BASE, max_examples=60, deadline=None, derandomize=True, database=None, print_blob=True),
    "random": settings(
        _BASE, max_examples=1000, deadline=None, derandomize=False, suppress_health_check=[HealthCheck.too_slow]
    ),
}


def register() -> None:
    for name, profile in PROFILES.items():
        settings.register_profile(name, profile)


def default_profile() -> str:
    return "ci" if os.environ.get("CI", "").lower() == "true" else "dev"


def examples(share: float = 1.0) -> int:
    """``share`` of the loaded profile's example count (at least 5), or NBPACK_FUZZ_EXAMPLES × share when set."""
    total = int(os.environ.get("NBPACK_FUZZ_EXAMPLES") or settings.default.max_examples)
    return max(5, round(total * share))
