"""nbpack/cli/echo.py: every --json answer is sorted, indented JSON on stdout, exact for big ints and unicode."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from nbpack.cli.echo import echo_json


def test_json_is_sorted_indented_and_exact() -> None:
    doc = {"b": 2**53 + 1, "a": {"z": "é, \x07", "y": [1, None]}}

    @click.command()
    def show() -> None:
        echo_json(doc)

    result = CliRunner().invoke(show)
    assert result.exit_code == 0
    assert json.loads(result.output) == doc  # 2^53 + 1 survives; a control character is escaped, not raw
    assert result.output.index('"a"') < result.output.index('"b"') and result.output.startswith('{\n  "a": {')
    assert "\\u0007" in result.output and result.output.endswith("}\n")
