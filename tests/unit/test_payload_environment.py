"""environment.yml of a git payload read with PyYAML's safe loader (no hand-written YAML subset)."""

from __future__ import annotations

import pytest

from nbpack.bundle.payload_git import _parse_environment
from nbpack.errors import InvalidInput

FLOW_AND_ANCHORS = """\
name: demo
channels: [conda-forge]
dependencies: [python=3.11, &np numpy>=1.26, {pip: [astropy==6.0, "-r extra.txt", 'pyvo']}]
"""


def test_block_flow_quotes_and_comments() -> None:
    text = "dependencies:\n  - python=3.11  # pinned\n  - 'numpy'\n  - pip:\n      - \"astropy==6.0\"\n      - -e .\n"
    assert _parse_environment("p", text) == (["python=3.11", "numpy"], ["astropy==6.0"])
    # flow style was beyond the old subset reader; safe_load reads it
    assert _parse_environment("p", FLOW_AND_ANCHORS) == (["python=3.11", "numpy>=1.26"], ["astropy==6.0", "pyvo"])


@pytest.mark.parametrize("text", ["", "name: x\n", "dependencies: 42\n", "dependencies: numpy\n", "- a\n- b\n"])
def test_no_usable_dependencies_is_empty_not_an_error(text: str) -> None:
    assert _parse_environment("p", text) == ([], [])


@pytest.mark.parametrize(
    "text", ["dependencies: [a, b\n", "a: b: c\n", "dependencies:\n  - !!python/object:os.system x\n"]
)
def test_broken_or_unsafe_yaml_is_a_clear_422(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        _parse_environment("demo", text)
    assert err.value.code == "payload_invalid_environment"
    assert err.value.http_status == 422
    assert str(err.value).startswith("payload 'demo': environment.yml: ")
    assert "\n" not in str(err.value)
