"""nbpack/ids.py: the id vocabulary (handles, content ids, return ids), defined once."""

from __future__ import annotations

import re

import pytest

from nbpack import ids
from nbpack.errors import NotFound


def test_ids_match_exactly_their_kinds() -> None:
    h = ids.new_handle_id()
    assert re.fullmatch(r"h-[0-9a-f]{24}", h) and ids.is_id(h, ids.HANDLE) and ids.is_id(h, "bh")
    assert not ids.is_id(h, ids.CONTENT) and not ids.is_id(h, ids.RETURN)
    assert ids.new_handle_id() != h  # random per create
    b = ids.make_id(ids.CONTENT, "ab" * 32)
    assert b == "b-" + "ab" * 12 and ids.is_id(b, ids.CONTENT)
    for bad in (h + "\n", " " + h, h.upper(), h[:-1], h + "0", "h-" + "g" * 24, None, 7, b"h-" + b"0" * 24):
        assert not ids.is_id(bad, "bhr"), bad
    assert re.fullmatch(ids.pattern("r"), "r-" + "0" * 24)


def test_check_id_answers_404_with_a_short_message() -> None:
    ids.check_id("r-" + "1" * 24, ids.RETURN)
    with pytest.raises(NotFound, match="no such return") as err:
        ids.check_id("r-../../etc/passwd" + "x" * 100, ids.RETURN)
    assert len(err.value.message) < 80
    with pytest.raises(NotFound, match="no such bundle"):
        ids.check_id("b-" + "1" * 24, ids.HANDLE)
