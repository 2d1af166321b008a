"""Notebook previews as sanitised HTML: rendered by nbconvert, then cleaned by nh3 (Ammonia).

Notebooks come from anyone, so the HTML keeps structure, text, tables and raster images only:
no scripts, event handlers, ``javascript:`` or ``data:`` links, SVG, iframes, forms or styles.
Pages that show it also send a Content-Security-Policy forbidding scripts.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import nh3
from nbconvert import HTMLExporter

from nbpack.bundle.notebook import BOOTSTRAP_TAG, read_notebook
from nbpack.errors import InvalidNotebook

__all__ = ["notebook_html", "sanitize", "CSP", "csp_with_form_targets"]

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_with_form_targets(origins: list[str]) -> str:
    """The pages' CSP letting forms lead to ``origins`` too (browsers check form-action on every redirect)."""
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))


_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
}
_ATTRS = {
    "*": {"class", "id", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")


def _filter(tag: str, attr: str, value: str) -> str | None:
    # data: URLs are allowed for raster images only (notebook plots); never for links.
    if attr in ("href", "src") and value.strip().lower().startswith("data:"):
        return value if tag == "img" and attr == "src" and _DATA_IMAGE.match(value.strip()) else None
    return value


def sanitize(html: str) -> str:
    """Clean untrusted HTML down to the safe subset used in previews."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRS,
        attribute_filter=_filter,
        url_schemes={"http", "https", "mailto", "data"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style", "svg", "math", "iframe", "object", "template"},
    )


_exporter: HTMLExporter | None = None
# nbconvert does not promise an exporter is thread-safe (each export re-registers filters on its shared Jinja
# environment): the service's threads take turns, ~2 ms a cell.
_exporter_lock = threading.Lock()


def _export(nb: Any) -> str:
    """One notebook as nbconvert's basic HTML. The exporter is kept: a new one compiles its Jinja templates again on
    first use, ~45 of a ~50 ms preview (measured; kept, ~6 ms)."""
    global _exporter
    with _exporter_lock:
        if _exporter is None:
            _exporter = HTMLExporter(template_name="basic")
        body, _ = _exporter.from_notebook_node(nb)
    return body


def notebook_html(data: bytes | dict[str, Any]) -> str:
    """A notebook's cells (inputs and outputs) as sanitised HTML fragment."""
    nb = read_notebook(data if isinstance(data, bytes) else json.dumps(data), "notebook")
    parts = []
    # One cell at a time: an unclosed <math>/<svg>/<style> in one cell is dropped with its own cell only,
    # instead of swallowing every cell after it when the whole page is cleaned at once.
    for cell in nb.cells:
        one = nb.copy()
        one.cells = [cell]
        try:
            body = _export(one)
        except Exception as exc:  # nbconvert raises assorted errors on odd outputs; the caller gets one clear error
            raise InvalidNotebook(f"notebook cannot be rendered ({type(exc).__name__})") from None
        clean = sanitize(body)
        if (cell.get("metadata", {}).get("jupyter") or {}).get("source_hidden"):
            # Folded as JupyterLab folds it (the bootstrap cell): one line to open, not 50 lines of plumbing first.
            tags = cell.get("metadata", {}).get("tags", [])
            what = "nbpack bootstrap: loads the bundle" if BOOTSTRAP_TAG in tags else "hidden cell"
            clean = f'<details class="folded"><summary>{what}</summary>{clean}</details>'
        parts.append(clean)
    return "\n".join(parts)
