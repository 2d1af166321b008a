"""Security properties checked in process: API keys compared in constant time over hashes and kept hashed, never
plaintext; an unclosed tag in a notebook preview hides only its own cell. The attacks on a running service are in
tests/e2e/test_security.py."""

from __future__ import annotations

import inspect
import json
import secrets
from pathlib import Path

import nbformat

from nbpack.config import hash_api_key
from nbpack.service.capabilities import Capabilities
from tests.helpers import make_app, make_config

SECRET = "security-secret-" + "x" * 20


def test_api_keys_are_compared_in_constant_time_over_hashes() -> None:
    source = inspect.getsource(Capabilities.check_api_key)
    assert "hmac.compare_digest(" in source and "hash_api_key(key)" in source
    # No early exit on the first match: every stored hash is compared; the one return (the tenant) follows the loop.
    body = source.split('"""', 2)[2]
    assert "break" not in body and body.count("return ") == 1
    assert body.index("return ") > body.index("for stored in")
    # Nor a short-circuiting membership test or string equality on the key or its hash.
    assert "==" not in source and "given in " not in source and "key) in " not in source


def test_api_keys_are_kept_hashed_never_plaintext(tmp_path: Path) -> None:
    plain = ["alpha-key-" + secrets.token_hex(8), "beta-key-" + secrets.token_hex(8)]
    prehashed = "gamma-key-" + secrets.token_hex(8)
    cfg = make_config(tmp_path, secret_key=SECRET, api_keys=f"{plain[0]}, {plain[1]},{hash_api_key(prehashed)}")
    assert cfg.api_key_hashes == [hash_api_key(k) for k in (*plain, prehashed)]
    assert all(h.startswith("sha256:") and len(h) == 7 + 64 for h in cfg.api_key_hashes)
    app = make_app(tmp_path, secret_key=SECRET, api_keys=f"{plain[0]},{plain[1]},{hash_api_key(prehashed)}")
    held = repr(vars(app.extensions["nbpack"].config)) + repr(dict(app.config)) + repr(vars(cfg))
    for key in (*plain, prehashed):
        assert key not in held
    c = app.test_client()
    for key in (*plain, prehashed):  # each still works, in either header
        assert c.get("/api/v1/payloads", headers={"X-API-Key": key}).status_code == 200
        assert c.get("/api/v1/payloads", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # The stored hash itself is not a key, nor is a key with a stray suffix.
    for wrong in (hash_api_key(plain[0]), plain[0] + "x", plain[0][:-1]):
        assert c.get("/api/v1/payloads", headers={"X-API-Key": wrong}).status_code == 401


def test_an_unclosed_tag_hides_only_its_own_cell() -> None:
    """Cells are cleaned one by one: a dangling <math>, <svg> or <style> cannot swallow the cells after it."""
    from nbpack.bundle.preview import notebook_html

    cells = [
        nbformat.v4.new_markdown_cell(f"before {tag}<img src=x onerror=alert(1)>")
        for tag in ("<math><mtext><table><mglyph><style>", "<svg><desc>", "<style>", "<iframe>")
    ]
    cells.append(nbformat.v4.new_markdown_cell("**still here**"))
    nb = nbformat.v4.new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"u{i}"
    html = notebook_html(json.loads(nbformat.writes(nb)))
    assert html.count("before") == 4 and "<strong>still here</strong>" in html
    assert "onerror" not in html and "<style" not in html and "<svg" not in html and "<iframe" not in html
