"""Every git child nbpack starts runs with one hardened environment (nbpack/gitenv.py), checked against git itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nbpack.gitenv import SAFE_CONFIG_ARGS, git_env


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service environment whose user config, GIT_* variables and system config would all change git."""
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = from-home\n[credential]\n\thelper = store\n")
    (home / ".config" / "git" / "config").write_text("[user]\n\temail = from-xdg@example.org\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'user.signingkey'='from-params'")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    return tmp_path


@pytest.mark.parametrize("inherit", [False, True])
def test_no_outside_config_reaches_git(hostile: Path, inherit: bool) -> None:
    env = git_env(inherit=inherit)
    assert not {"GIT_CONFIG_PARAMETERS", "GIT_DIR"} & set(env)
    assert ("HTTPS_PROXY" in env) is inherit  # network fetches keep proxy settings; local work gets nothing
    done = subprocess.run(
        ["git", *SAFE_CONFIG_ARGS, "config", "--list", "--show-origin"],
        cwd=hostile,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "from-" not in done.stdout and "helper=store" not in done.stdout
    assert "credential.helper=" in done.stdout  # the command-line override is what git sees


def test_transports_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    # Even where config allows ext:: (it runs a command), the allow-list in the environment overrides it.
    marker = tmp_path / "ran"
    done = subprocess.run(
        ["git", *SAFE_CONFIG_ARGS, "-c", "protocol.ext.allow=always", "ls-remote", f"ext::sh -c touch% {marker}"],
        env=git_env(inherit=True),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "transport 'ext' not allowed" in done.stderr
    assert not marker.exists()
