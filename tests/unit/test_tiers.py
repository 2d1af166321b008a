"""The test suite's own rules (docs/design.md, "Tests in tiers"): every test file in a tier folder, the unit tier
waits on conditions (never for time to pass: the clock fixture moves time), and the Hypothesis profiles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import settings

from tests import hypothesis_profiles

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_is_in_a_tier_folder() -> None:
    stray = [
        p.relative_to(TESTS).as_posix()
        for p in TESTS.rglob("test_*.py")
        if p.relative_to(TESTS).parts[0] not in ("unit", "integration", "e2e", "vendor")
    ]
    assert stray == []


def _sleeps_outside_a_loop(tree: ast.AST) -> list[int]:
    found: list[int] = []

    def visit(node: ast.AST, in_loop: bool) -> None:
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("time.sleep", "sleep") and not in_loop:
            found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            # a nested function or class starts afresh: the loop around its definition does not run its body
            fresh = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
            visit(child, False if fresh else in_loop or isinstance(node, ast.While))

    visit(tree, False)
    return found


def test_unit_tests_poll_conditions_and_never_sleep_for_time_to_pass() -> None:
    offenders = {
        p.name: lines
        for p in sorted((TESTS / "unit").glob("*.py"))
        if (lines := _sleeps_outside_a_loop(ast.parse(p.read_text("utf-8"))))
    }
    assert offenders == {}, "use the clock fixture (tests/conftest.py) or a bounded wait on a condition"


def test_the_rule_catches_a_bare_sleep_and_allows_a_bounded_poll() -> None:
    bare = ast.parse("import time\ndef t():\n    time.sleep(2)\n")
    poll = ast.parse(
        "import time\ndef t():\n    while not done() and time.monotonic() < end:\n        time.sleep(0.05)\n"
    )
    nested = ast.parse("while True:\n    def f():\n        time.sleep(1)\n")
    assert _sleeps_outside_a_loop(bare) == [3] and _sleeps_outside_a_loop(poll) == []
    assert _sleeps_outside_a_loop(nested) == [3]


def test_ci_draws_the_same_cases_every_run_and_local_runs_stay_small(monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = hypothesis_profiles.PROFILES
    assert profiles["ci"].derandomize and profiles["ci"].database is None
    assert not profiles["random"].derandomize and not profiles["dev"].derandomize
    assert profiles["dev"].max_examples <= profiles["ci"].max_examples < profiles["random"].max_examples
    monkeypatch.setenv("CI", "true")
    assert hypothesis_profiles.default_profile() == "ci"
    monkeypatch.setenv("CI", "")
    assert hypothesis_profiles.default_profile() == "dev"
    monkeypatch.delenv("NBPACK_FUZZ_EXAMPLES", raising=False)
    assert hypothesis_profiles.examples() == settings.default.max_examples  # the loaded profile's count
    assert hypothesis_profiles.examples(0.001) == 5  # never fewer than five
    monkeypatch.setenv("NBPACK_FUZZ_EXAMPLES", "1000")
    assert hypothesis_profiles.examples(1 / 4) == 250
