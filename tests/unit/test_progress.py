"""nbpack/cli/progress.py: the bars count what they are told and stay silent when stderr is not a terminal."""

from __future__ import annotations

import functools
import io
import sys

import pytest
from tqdm import tqdm

from nbpack.cli import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with progress.rows() as tell:
        tell("a", 10)
    with progress.transfer("push") as moved:
        moved(5, 10)
    with progress.cells() as ran:
        ran(0, 3)
    assert err.getvalue() == ""


def test_on_a_terminal_the_bars_show_the_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    # Draw every update, not 10 a second (tqdm's own throttle, not nbpack's choice).
    monkeypatch.setattr(progress, "tqdm", functools.partial(tqdm, mininterval=0, miniters=1))
    with progress.rows() as tell:
        tell("sources", 1500)
        tell("sources", 500)
        tell("spectra, é", 7)  # a new catalog closes the last bar and starts its own
    with progress.transfer("pull") as moved:
        moved(2048, 4096)
        moved(1024, 4096)  # a resumed download may go back: no error
    with progress.cells() as ran:
        ran(2, 5)
    shown = err.getvalue()
    assert "catalog sources: 2.00k rows" in shown and "catalog spectra, é: 7.00 rows" in shown
    assert "pull:  50%|#####     | 2.00k/4.00k" in shown
    assert "cells:  60%" in shown and "3/5" in shown
