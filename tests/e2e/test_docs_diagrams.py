"""Every Mermaid diagram in the documents renders with Mermaid itself (the library GitHub and GitLab use), in headless
Chromium: a syntax error there would show ESAP's readers an error box instead of the design."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

MERMAID_JS = REPO / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.M | re.S)
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
DIAGRAMS = [(f"{p.relative_to(REPO)}#{i}", code) for p in DOCS for i, code in enumerate(BLOCK.findall(p.read_text()))]

pytestmark = pytest.mark.browser


def test_the_design_documents_have_diagrams() -> None:
    names = {name.split("#")[0] for name, _ in DIAGRAMS}
    assert {"docs/architecture.md", "docs/roadmap.md"} <= names
    assert sum(name.startswith("docs/architecture.md") for name, _ in DIAGRAMS) >= 7  # components, 5 steps, trust


@pytest.mark.parametrize(("name", "code"), DIAGRAMS, ids=[n for n, _ in DIAGRAMS])
def test_diagram_renders(page, name: str, code: str) -> None:  # noqa: ANN001
    assert MERMAID_JS.is_file(), f"{MERMAID_JS} is missing: run scripts/setup.sh --test (npm ci)"
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(path=str(MERMAID_JS))
    result = page.evaluate(
        """async (code) => {
        mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
        try {
            await mermaid.parse(code);
            const {svg} = await mermaid.render("d" + Math.random().toString(36).slice(2), code);
            return {svg};
        } catch (e) {
            return {error: String(e && e.message || e)};
        }
    }""",
        code,
    )
    assert "error" not in result, f"{name}: {result.get('error')}"
    svg = result["svg"]
    assert svg.startswith("<svg") and "Syntax error" not in svg, name
    # The diagram's own words reach the picture: the first quoted label, or the first participant's name.
    labels = re.findall(r"\bas ([^\n<]+)", code) + re.findall(r'"([^"<]+)', code)
    assert labels, name
    word = re.search(r"[A-Za-z]{3,}", labels[0])
    assert word and word.group(0) in svg, (name, labels[0])
