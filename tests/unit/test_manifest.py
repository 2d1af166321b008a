"""nbpack/bundle/manifest.py: opening a zip whose root JSON is a valid manifest, and comparing its ``contents``
list with the members really there."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from nbpack.bundle import archive
from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.bundle.manifest import contents_problems, open_manifest_zip
from nbpack.errors import InvalidBundle, InvalidInput
from tests.helpers import rewrite_zip, template_notebook


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("manifest") / "b.zip"
    build_bundle(BuildSpec(title="t", notebook=template_notebook("x = 1")), out)
    return out


def _open(path: Path):  # noqa: ANN202 - a ManifestZip
    return open_manifest_zip(path, archive.DEFAULT_LIMITS, "nbpack.json", "bundle", "not an nbpack bundle")


def test_a_sound_bundle_opens_and_has_no_problems(bundle: Path) -> None:
    with _open(bundle) as opened:
        assert opened.id == opened.manifest["id"] and opened.id.startswith("b-")
        assert contents_problems(opened, {"nbpack.json"}) == []
        readme = opened.read("README.md")
        assert readme.startswith(b"# t\n")


def test_missing_file_and_missing_manifest_say_which(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        _open(tmp_path / "nope.zip")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("other.json", "{}")
    with pytest.raises(InvalidBundle, match="not an nbpack bundle: no nbpack.json at the archive root"):
        _open(plain)


@pytest.mark.parametrize(
    ("manifest", "error", "message"),
    [
        (b"\xff\xfe{", InvalidBundle, "not valid JSON"),
        (b"[" * 100_000, InvalidBundle, "not valid JSON"),  # recursion, not a crash
        (b'{"id": 5}', InvalidBundle, "manifest is invalid|format version"),
    ],
)
def test_a_manifest_that_is_not_json_or_not_valid_is_refused(
    tmp_path: Path, bundle: Path, manifest: bytes, error: type[Exception], message: str
) -> None:
    bad = tmp_path / "bad.zip"
    rewrite_zip(bundle, bad, change={"nbpack.json": manifest})
    with pytest.raises(error, match=message):
        _open(bad)


def test_each_disagreement_with_the_contents_list_is_reported(tmp_path: Path, bundle: Path) -> None:
    with _open(bundle) as opened:
        listed = {e["path"]: e for e in opened.manifest["contents"]}
    readme = listed["README.md"]
    changed = tmp_path / "changed.zip"
    same_size = bytes(b ^ 1 for b in _member(bundle, "README.md"))
    rewrite_zip(bundle, changed, change={"README.md": same_size, "requirements.txt": b"x" * 3})
    with zipfile.ZipFile(changed, "a") as zf:
        zf.writestr("extra, é.txt", "smuggled")
    with _open(changed) as opened:
        problems = contents_problems(opened, {"nbpack.json"})
        shallow = contents_problems(opened, {"nbpack.json"}, hash_members=False)
    req = listed["requirements.txt"]
    assert problems == [
        "extra, é.txt: in the archive but not in the manifest contents",
        "README.md: sha256 does not match the manifest",
        f"requirements.txt: 3 bytes, the manifest says {req['bytes']}",
    ]
    assert "README.md: sha256 does not match the manifest" not in shallow  # sizes only
    assert readme["bytes"] == len(same_size)


def test_absent_members_report_the_given_note_or_nothing(tmp_path: Path, bundle: Path) -> None:
    with _open(bundle) as opened:
        manifest = opened.manifest
    without = tmp_path / "without.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(without, "w") as dst:
        for info in src.infolist():
            if info.filename not in ("README.md", "requirements.txt"):
                dst.writestr(info, src.read(info))
    with _open(without) as opened:
        assert contents_problems(opened, {"nbpack.json"}) == [
            "README.md: listed in the manifest but missing from the archive",
            "requirements.txt: listed in the manifest but missing from the archive",
        ]
        notes = {"README.md": "", "requirements.txt": "left out on purpose"}
        assert contents_problems(opened, {"nbpack.json"}, absent=notes) == ["left out on purpose"]
    assert json.dumps(manifest)  # the manifest itself was never listed in its own contents
    assert "nbpack.json" not in {e["path"] for e in manifest["contents"]}


def _member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)
