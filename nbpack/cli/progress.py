"""Progress bars for the long commands (build rows, push and pull bytes, run cells): on a terminal only.

tqdm, not rich: it is already installed with nbpack (papermill depends on it), brings nothing else, draws on stderr
and turns itself off when stderr is not a terminal (``disable=None``), so pipes, CI logs and tests stay quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

__all__ = ["rows", "transfer", "cells"]


def _bar(**kw: Any) -> tqdm:
    return tqdm(file=sys.stderr, disable=None, leave=False, dynamic_ncols=True, **kw)


@contextmanager
def rows() -> Iterator[Callable[[str, int], None]]:
    """``tell(catalog, n)``: n more rows of ``catalog`` written (one bar per catalog, totals unknown up front)."""
    bars: dict[str, tqdm] = {}

    def tell(name: str, n: int) -> None:
        if name not in bars:
            for old in bars.values():
                old.close()
            bars[name] = _bar(desc=f"catalog {name}", unit=" rows", unit_scale=True)
        bars[name].update(n)

    try:
        yield tell
    finally:
        for bar in bars.values():
            bar.close()


@contextmanager
def transfer(what: str) -> Iterator[Callable[[int, int | None], None]]:
    """``tell(done, total)``: bytes of an upload or download so far (a resumed download may go back)."""
    bar = _bar(desc=what, unit="B", unit_scale=True, unit_divisor=1024)

    def tell(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield tell
    finally:
        bar.close()


@contextmanager
def cells() -> Iterator[Callable[[int, int], None]]:
    """``tell(index, total)``: cell ``index`` of ``total`` has run."""
    bar = _bar(desc="cells", unit=" cells")

    def tell(index: int, total: int) -> None:
        bar.total = total
        bar.update(index + 1 - bar.n)

    try:
        yield tell
    finally:
        bar.close()
