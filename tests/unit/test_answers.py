"""nbpack/service/answers.py: the create answer's JSON and the manifest as the API shows it (never the token)."""

from __future__ import annotations

import copy

from nbpack.service.answers import Stored, public_manifest

MANIFEST = {"id": "b-0123456789abcdef01234567", "title": "Étoiles, « naines »", "returns": {"url": "u", "token": "t"}}


def test_the_create_answer_names_the_content_and_handle_lifetimes() -> None:
    stored = Stored("h-1", MANIFEST, {"landing": "L"}, True, "2027-01-01T00:00:00Z", "2027-03-01T00:00:00Z", "ann")
    doc = stored.to_json()
    assert doc == {
        "id": "h-1",
        "title": "Étoiles, « naines »",
        "created": True,
        "expires": "2027-01-01T00:00:00Z",
        "links": {"landing": "L"},
        "content_id": MANIFEST["id"],
        "owner": "ann",
        "handle_expires": "2027-03-01T00:00:00Z",
    }
    assert "token" not in repr(doc)


def test_the_basket_report_appears_only_when_the_request_had_one() -> None:
    empty = Stored("h-1", MANIFEST, {}, False, "e", basket=[]).to_json()
    assert empty["basket"] == [] and empty["created"] is False
    assert "basket" not in Stored("h-1", MANIFEST, {}, False, "e").to_json()


def test_public_manifest_drops_the_return_token_and_leaves_the_original() -> None:
    original = copy.deepcopy(MANIFEST)
    shown = public_manifest(MANIFEST)
    assert shown["returns"] == {"url": "u"} and shown["title"] == MANIFEST["title"]
    assert MANIFEST == original  # the stored manifest is not changed under the caller
    assert public_manifest({"id": "x"}) == {"id": "x"}
