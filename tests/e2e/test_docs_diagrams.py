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


def test_the_components_diagram_is_legible(page) -> None:  # noqa: ANN001
    """The first diagram of architecture.md (the one a newcomer reads first): no label box overlaps another, at the
    size Mermaid lays it out (issue 21: it rendered with edge labels over nodes)."""
    name, code = next((n, c) for n, c in DIAGRAMS if n == "docs/architecture.md#0")
    page.set_viewport_size({"width": 1600, "height": 1200})
    page.set_content("<!doctype html><html><body><div id='d'></div></body></html>")
    page.add_script_tag(path=str(MERMAID_JS))
    boxes = page.evaluate(
        """async (code) => {
        mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
        const {svg} = await mermaid.render("legible", code);
        document.getElementById("d").innerHTML = svg;
        return [...document.querySelectorAll("#d svg g.edgeLabel, #d svg g.node")]
            .map((el) => [el.textContent.trim(), el.getBoundingClientRect().toJSON()])
            .filter(([, r]) => r.width >= 1 && r.height >= 1);
    }""",
        code,
    )
    assert len(boxes) >= 20, (name, len(boxes))  # every node and edge label was measured

    def meet(a: dict, b: dict) -> bool:
        return (
            a["left"] < b["right"] - 1
            and b["left"] < a["right"] - 1
            and a["top"] < b["bottom"] - 1
            and (b["top"] < a["bottom"] - 1)
        )

    overlaps = [(t1, t2) for i, (t1, r1) in enumerate(boxes) for t2, r2 in boxes[i + 1 :] if meet(r1, r2)]
    assert overlaps == [], overlaps
