"""repo2docker (what BinderHub builds with) on unpacked bundles: its own buildpack detection and Dockerfile rendering,
through its Python API in dry-run mode (no docker), with the Local content provider only (no network)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from repo2docker import contentproviders
from repo2docker.app import Repo2Docker
from repo2docker.buildpacks import CondaBuildPack, PythonBuildPack
from repo2docker.utils import chdir

from nbpack.bundle import archive
from nbpack.bundle.build import BUNDLE_PYTHON, BuildSpec, CatalogInput, build_bundle, open_bundle
from tests.helpers import reference_table


def _unpacked(tmp_path: Path, name: str, **spec: object) -> Path:
    zpath = tmp_path / f"{name}.zip"
    build_bundle(BuildSpec(title=f"repo2docker {name}", catalogs=[CatalogInput("t", reference_table())], **spec), zpath)
    folder = tmp_path / name
    with open_bundle(zpath) as bf:
        archive.extract(bf.zf, folder)
    return folder


def _repo2docker(folder: Path) -> tuple[object, str]:
    """The buildpack repo2docker picks for ``folder`` (its own order and detect()) and the Dockerfile it renders."""
    app = Repo2Docker(repo=str(folder), dry_run=True, content_providers=[contentproviders.Local])
    app.initialize()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # a dry run prints the Dockerfile
        app.build()
    # The same loop as Repo2Docker.build, which keeps the picked buildpack to itself.
    with chdir(str(folder)):
        picked = next((bp for bp in (BP(base_image=app.base_image) for BP in app.buildpacks) if bp.detect()), None)
        picked = picked or app.default_buildpack(base_image=app.base_image)
        picked.platform = app.platform
        picked.python_version  # noqa: B018 - read inside the folder: it parses the files there, once
    return picked, out.getvalue()


def _lock_file(bp: object) -> str:
    # The frozen base environment repo2docker copies in is chosen by the Python version it will build.
    return " ".join(Path(src).name for src in bp.get_build_script_files())


def test_pip_only_bundle_builds_the_pinned_python(tmp_path: Path) -> None:
    folder = _unpacked(tmp_path, "pip", requirements=["astropy>=6"])
    assert not (folder / "environment.yml").exists()
    assert (folder / "runtime.txt").read_text() == f"python-{BUNDLE_PYTHON}\n"
    bp, dockerfile = _repo2docker(folder)
    assert type(bp) is PythonBuildPack
    assert bp.python_version == BUNDLE_PYTHON
    with chdir(str(folder)):
        assert f"environment.py-{BUNDLE_PYTHON}-linux-64.lock" in _lock_file(bp)
    assert 'pip install --no-cache-dir -r "requirements.txt"' in dockerfile


def test_conda_bundle_builds_the_pinned_python(tmp_path: Path) -> None:
    folder = _unpacked(tmp_path, "conda", conda=["numpy"], requirements=["astropy>=6"])
    assert f"  - python={BUNDLE_PYTHON}\n" in (folder / "environment.yml").read_text()
    bp, dockerfile = _repo2docker(folder)
    assert type(bp) is CondaBuildPack
    assert bp.python_version == BUNDLE_PYTHON
    with chdir(str(folder)):
        assert f"environment.py-{BUNDLE_PYTHON}-linux-64.lock" in _lock_file(bp)
    assert '--file "environment.yml"' in dockerfile


def test_a_payloads_own_runtime_txt_wins(tmp_path: Path) -> None:
    folder = _unpacked(tmp_path, "own", extra_files={"runtime.txt": b"python-3.12\n"})
    bp, _ = _repo2docker(folder)
    assert type(bp) is PythonBuildPack and bp.python_version == "3.12"


@pytest.mark.parametrize("pin", ["python>=3.11", "python"])
def test_repo2docker_ignores_a_range_pin(tmp_path: Path, pin: str) -> None:
    # Why the pin is exact: the form nbpack used to write falls back to repo2docker's default Python.
    folder = _unpacked(tmp_path, "range", conda=["numpy"])
    env = folder / "environment.yml"
    env.write_text(env.read_text().replace(f"python={BUNDLE_PYTHON}", pin))
    bp, _ = _repo2docker(folder)
    assert type(bp) is CondaBuildPack
    assert bp.python_version == bp.major_pythons["3"]
