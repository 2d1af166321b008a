"""Shared test set-up: Jupyter and kernel state kept inside a per-session scratch folder; the service app,
its test client and CLI runner (``app``, ``client``, ``runner``; a module adds config by overriding ``app_config``);
the Hypothesis profiles (tests/hypothesis_profiles.py: ``ci`` when CI=true, else ``dev``; ``--hypothesis-profile``
picks another)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import settings

from tests import hypothesis_profiles

pytest_plugins = [
    "tests.fixtures.seaweed",
    "tests.fixtures.browser",
    "tests.fixtures.hub",
    "tests.fixtures.service",
    "tests.fixtures.rucio",
]

# Vendored code is run by the tests, never collected as tests (the ESAP gateway ships Django tests of its own).
collect_ignore_glob = ["vendor/*"]

_scratch = tempfile.mkdtemp(prefix="nbpack-tests-")
for _var, _sub in [
    ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
    ("JUPYTER_DATA_DIR", "jupyter-data"),
    ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ("IPYTHONDIR", "ipython"),
    ("NBPACK_CACHE", "nbpack-cache"),
]:
    os.environ.setdefault(_var, os.path.join(_scratch, _sub))


class FakeClock:
    """A wall clock that only moves when told (``advance``); nbpack's expiry, lifetimes and gc read it."""

    def __init__(self, start: float) -> None:
        self.time = float(start)

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """nbpack's clock (nbpack/clock.py) frozen at a fixed instant for the test: move it with ``clock.advance``."""
    from nbpack import clock as nbpack_clock

    fake = FakeClock(1_790_000_000)  # 2026-09-21, a whole second
    with nbpack_clock.use(fake):
        yield fake


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra NBPACK_* keys for ``app`` (override in a module: hubs_file, payloads_file, webhook_secret, ...)."""
    return {}


@pytest.fixture
def app(tmp_path: Path, app_config: dict[str, Any]) -> Flask:
    """The service app over a fresh store in ``tmp_path``, API key ``tests.helpers.APP_API_KEY``."""
    from tests.helpers import make_app

    return make_app(tmp_path, **app_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


hypothesis_profiles.register()


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis' own plugin loads a profile named by --hypothesis-profile; otherwise CI=true picks the
    # derandomized one. Test modules read the loaded profile at import (collection), after this hook.
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(hypothesis_profiles.default_profile())


_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The tier is the folder a test lives in (tests/unit, tests/integration, tests/e2e): `-m unit` picks the fast
    # in-process tier without each file repeating a marker.
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
                break
