"""nbpack/gitenv.py: the one environment of git children (no outside config, no prompts, allowed transports only);
real git against a hostile config is in tests/integration/test_gitenv.py."""

from __future__ import annotations

import os

import pytest

from nbpack import gitenv


def test_local_work_sees_only_path_and_the_hardening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-for-git")
    env = gitenv.git_env()
    assert env["PATH"] == os.environ["PATH"]
    assert set(env) == {
        "PATH",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
        "GIT_TERMINAL_PROMPT",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_ALLOW_PROTOCOL",
        "LC_ALL",
    }
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ASKPASS"] == env["SSH_ASKPASS"] == "/bin/false"
    assert env["GIT_ALLOW_PROTOCOL"] == "http:https:git:file" and "ext" not in env["GIT_ALLOW_PROTOCOL"].split(":")


def test_network_fetches_keep_proxies_but_no_git_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/pwned")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    env = gitenv.git_env(inherit=True)
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    assert "GIT_DIR" not in env and "GIT_SSH_COMMAND" not in env
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull and env["LC_ALL"] == "C"
    assert gitenv.SAFE_CONFIG_ARGS == ("-c", "credential.helper=", "-c", "core.askPass=/bin/false")
