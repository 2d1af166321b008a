"""What the user sees: messages as HTML in a kernel or text elsewhere, progress bars, missing-package hints."""

from __future__ import annotations

import sys
import time
from typing import Any

from .errors import RuntimeProblem


def in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")


def show(text: str, html_text: str | None = None) -> None:
    """Show a message as HTML in a kernel, as text otherwise."""
    if html_text and in_kernel():
        from IPython.display import HTML, display

        display(HTML(html_text))
    else:
        print(text)


def need(module: str, why: str, install: str) -> Any:
    """Import an optional module or explain exactly what to install."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise RuntimeProblem(f"{why} needs the '{module}' package; install it with: {install}") from None


# --- progress bar -----------------------------------------------------------------------------------------


class Progress:
    """A download progress line: an updating display in a kernel, stderr otherwise."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self._last = label, total, 0, 0.0
        self._handle = None
        if in_kernel():
            from IPython.display import display

            self._handle = display({"text/plain": self._text()}, raw=True, display_id=True)

    def _text(self) -> str:
        if self.total:
            pct = min(100, int(100 * self.done / self.total))
            bar = "#" * (pct // 4)
            return f"{self.label} [{bar:<25}] {pct:3d}% {self.done}/{self.total} bytes"
        return f"{self.label} {self.done} bytes"

    def update(self, n: int, final: bool = False) -> None:
        self.done = n
        now = time.monotonic()
        if not final and now - self._last < 0.5:
            return
        self._last = now
        if self._handle is not None:
            self._handle.update({"text/plain": self._text()}, raw=True)
        else:
            sys.stderr.write("\r" + self._text() + ("\n" if final else ""))
            sys.stderr.flush()
