"""How every git child process is run: one environment and one set of ``-c`` flags, defined once.

No system or user config (credential helpers, ``url.*.insteadOf`` rewrites, hooks paths), no terminal prompts or
askpass programs (a server must never wait on a password), only the transports nbpack fetches over, and
untranslated messages (errors are reported from git's stderr).
"""

from __future__ import annotations

import os

__all__ = ["git_env", "SAFE_CONFIG_ARGS", "ALLOWED_PROTOCOLS"]

ALLOWED_PROTOCOLS = "http:https:git:file"
# Also passed on the command line: a repository's own config could otherwise name a helper or askpass program.
SAFE_CONFIG_ARGS = ("-c", "credential.helper=", "-c", "core.askPass=/bin/false")

_HARDENING = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
    "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
    "LC_ALL": "C",
}


def git_env(*, inherit: bool = False) -> dict[str, str]:
    """The environment for a git child.

    ``inherit=False`` (work on local repositories): only ``PATH`` beside the hardening, so nothing in the service's
    environment changes what is built or served. ``inherit=True`` (fetches over the network): the process
    environment without any ``GIT_*`` variable, so proxy and CA settings still apply.
    """
    if inherit:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    else:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(_HARDENING)
    return env
