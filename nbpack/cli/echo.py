"""What every command prints its --json answer with: sorted, indented JSON on stdout."""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["echo_json"]


def echo_json(doc: Any) -> None:
    """``doc`` as indented JSON with sorted keys (stable for scripts and diffs)."""
    click.echo(json.dumps(doc, indent=2, sort_keys=True))
