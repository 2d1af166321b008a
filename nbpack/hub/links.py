"""Signed, scoped, expiring tokens and the launch links that open a bundle in a hub.

A token is an itsdangerous URL-safe signature over ``{"b": handle id, "s": scope, "n": nonce, "exp": unix_time}``.
Each scope has its own salt, so a token of one scope does not even verify as another. ``n`` is the handle's
stored nonce: the service checks it against the handle's state, so deleting the handle revokes every token.
A ``git`` token has no ``exp``: it lives as long as the handle (nbgitpuller re-pulls from the URL it cloned).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from nbpack import clock
from nbpack.errors import Forbidden, InvalidInput
from nbpack.runtime.nbpack_runtime.vocab import SIGNED, path_problem

# The query parameter of a member's files URL that asks for a signed read of it instead of its bytes (the runtime's
# word, ``vocab.SIGNED``; the runtime appends it to the member URLs it builds from the files prefix).
SIGNED_READ = SIGNED

__all__ = [
    "SIGNED_READ",
    "SCOPES",
    "MODES",
    "Spawn",
    "make_token",
    "check_token",
    "launch_url",
    "server_launch_url",
    "public_url",
    "target_dir_for",
]

SCOPES = ("read", "return", "git")
# Scopes whose tokens carry no expiry of their own (bounded by the handle's life instead).
UNDATED = ("git",)
# How a hub gets the bundle: nbgitpuller clones the git URL; binderhub builds an image from it; fromurl has
# jupyterlab-open-url-parameter fetch the lone notebook (``lab?fromURL=``) from the browser.
MODES = ("nbgitpuller", "binderhub", "fromurl")
# A JupyterHub user-option name a launch link may set (``opt-<name>=``).
USER_OPTION = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# Anything longer than this is not a token we issued; refuse before doing any work on it.
_MAX_TOKEN_CHARS = 512
_SLUG_CHARS = 40
_SHORT_ID_CHARS = 8


def _secrets(secret: str | Sequence[str]) -> list[str]:
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidInput("token secret must be a non-empty string or a non-empty list of them")
    return keys


def _serializer(secret: str | Sequence[str], scope: str) -> URLSafeSerializer:
    # itsdangerous signs with the *last* key; nbpack's convention is "first signs", so reverse.
    keys = list(reversed(_secrets(secret)))
    return URLSafeSerializer(
        keys,
        salt=f"nbpack.token.{scope}",
        signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
    )


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise InvalidInput(f"unknown token scope {scope!r}; expected one of {', '.join(SCOPES)}")


def make_token(
    secret: str | Sequence[str], scope: str, bundle_id: str, expires_in: int | None, nonce: str | None = None
) -> str:
    """Sign a URL-safe token granting ``scope`` on one handle for ``expires_in`` seconds (None: git scope only)."""
    _check_scope(scope)
    if not isinstance(bundle_id, str) or not bundle_id:
        raise InvalidInput("token bundle id must be a non-empty string")
    payload: dict = {"b": bundle_id, "s": scope}
    if nonce is not None:
        payload["n"] = nonce
    if expires_in is None and scope in UNDATED:
        return _serializer(secret, scope).dumps(payload)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise InvalidInput(f"token expiry must be a positive number of seconds, got {expires_in!r}")
    # Round up so the token lives at least ``expires_in`` seconds.
    payload["exp"] = math.ceil(clock.timestamp() + expires_in)
    return _serializer(secret, scope).dumps(payload)


def _loads(secret: str | Sequence[str], scope: str, token: str) -> dict | None:
    try:
        payload = _serializer(secret, scope).loads(token)
    except BadSignature:
        return None
    return payload if isinstance(payload, dict) else None


def check_token(secret: str | Sequence[str], token: str, scope: str, bundle_id: str) -> dict:
    """Verify a token for ``scope`` on ``bundle_id``; return ``{bundle_id, scope, exp, nonce}``, else Forbidden.

    The nonce is returned, not checked: only the caller holds the handle's stored state.
    """
    _check_scope(scope)
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise Forbidden("token is not valid", code="token_invalid")
    payload = _loads(secret, scope, token)
    if payload is None:
        # Only to tell the user *why*: a genuine token of another scope gets its own message.
        if any(_loads(secret, other, token) is not None for other in SCOPES if other != scope):
            raise Forbidden(f"token does not grant {scope} access", code="token_scope")
        raise Forbidden("token is not valid", code="token_invalid")
    exp = payload.get("exp")
    if payload.get("s") != scope:
        raise Forbidden(f"token does not grant {scope} access", code="token_scope")
    if payload.get("b") != bundle_id:
        raise Forbidden("token is for another bundle", code="token_bundle")
    if exp is None and scope in UNDATED:
        return {"bundle_id": payload["b"], "scope": payload["s"], "exp": None, "nonce": payload.get("n")}
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Forbidden("token is not valid", code="token_invalid")
    if exp <= clock.timestamp():
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(exp))
        raise Forbidden(f"this link expired on {when}", code="token_expired")
    return {"bundle_id": payload["b"], "scope": payload["s"], "exp": exp, "nonce": payload.get("n")}


def target_dir_for(bundle_id: str, title: str) -> str:
    """A stable, filesystem-safe folder name for a bundle: slug of the title plus a short id."""
    short = re.sub(r"[^a-z0-9]", "", bundle_id.lower().removeprefix("b-").removeprefix("h-"))[:_SHORT_ID_CHARS]
    if not short:
        raise InvalidInput(f"bundle id {bundle_id!r} has no usable characters for a folder name")
    ascii_title = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    return f"{slug or 'bundle'}-{short}"


def _check_base(url: str, what: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{what} must be an http(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise InvalidInput(f"{what} must not carry a query or fragment, got {url!r}")
    return url.rstrip("/")


def _check_relpath(path: str, what: str) -> str:
    if path_problem(path):
        raise InvalidInput(f"{what} must be a relative path without '..', got {path!r}")
    return path


def _lab_path(*relpaths: str) -> str:
    # The hub redirects to base_url + urlpath verbatim, so each path segment must already be
    # percent-escaped (a '#' or '?' in a notebook name would otherwise cut the URL short).
    return "lab/tree/" + "/".join(quote(p, safe="/") for p in relpaths)


@dataclass(frozen=True)
class Spawn:
    """Start the user's server with a profile before pulling: JupyterHub's ``/hub/spawn?opt-<option>=<value>``.

    ``server`` names the server (JupyterHub's named servers); its spawn URL holds the hub user name, so ``user``
    is needed with it. Without both, the user's default server is spawned (options ignored if it already runs).
    """

    option: str
    value: str
    server: str = ""
    user: str = ""


def _pull_path(mode: str, repo_url: str, ref: str, notebook: str, target_dir: str, notebook_url: str) -> str:
    """What the user's server is asked for, relative to its base URL."""
    _check_relpath(target_dir, "target folder")
    if mode == "fromurl":
        parts = urlsplit(notebook_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise InvalidInput(f"notebook URL must be an http(s) URL, got {notebook_url!r}")
        # The extension names the upload after the URL's last segment and puts it in fromURLToFolder.
        query = urlencode({"fromURL": notebook_url, "fromURLToFolder": target_dir}, quote_via=quote)
        return f"lab?{query}"
    query = urlencode(
        {"repo": repo_url, "branch": ref, "urlpath": _lab_path(target_dir, notebook), "targetpath": target_dir},
        quote_via=quote,
    )
    return f"git-pull?{query}"


def _spawned(base: str, spawn: Spawn, pull: str) -> str:
    """The hub link that spawns with ``spawn``'s option, then sends the user on to ``pull``."""
    if not USER_OPTION.fullmatch(spawn.option) or not spawn.value:
        raise InvalidInput(f"spawn option must be a name and a value, got {spawn.option!r}={spawn.value!r}")
    prefix = urlsplit(base).path  # a hub under a path (https://host/jhub) has it before /hub and /user
    if spawn.server and spawn.user:
        if len(spawn.user) > 255 or not spawn.user.isprintable() or spawn.user != spawn.user.strip():
            raise InvalidInput("hub user name must be 1-255 printable characters without surrounding spaces")
        # JupyterHub escapes a user name in its URLs the same way (utils.url_escape_path).
        user, server = quote(spawn.user, safe="@~"), quote(spawn.server, safe="")
        where, after = f"/hub/spawn/{user}/{server}", f"{prefix}/user/{user}/{server}/{pull}"
    else:
        where, after = "/hub/spawn", f"{prefix}/hub/user-redirect/{pull}"
    query = urlencode({f"opt-{spawn.option}": spawn.value, "next": after}, quote_via=quote)
    return f"{base}{where}?{query}"


def launch_url(
    hub_url: str,
    mode: str,
    repo_url: str,
    *,
    ref: str = "main",
    notebook: str,
    target_dir: str = "",
    notebook_url: str = "",
    spawn: Spawn | None = None,
) -> str:
    """The link that opens ``notebook`` in a hub: nbgitpuller, BinderHub or fromurl rules, spawning first if asked.

    ``notebook_url`` (fromurl) is the lone notebook's URL; ``spawn`` (JupyterHub modes) starts the server with a
    profile. BinderHub builds its own image and takes no profile.
    """
    if mode not in MODES:
        raise InvalidInput(f"unknown launch mode {mode!r}; expected one of {', '.join(MODES)}")
    base = _check_base(hub_url, "hub URL")
    _check_base(repo_url, "repository URL")
    if not ref or any(c.isspace() for c in ref):
        raise InvalidInput(f"git ref must be a non-empty name without spaces, got {ref!r}")
    _check_relpath(notebook, "notebook path")
    if mode != "binderhub":
        pull = _pull_path(mode, repo_url, ref, notebook, target_dir, notebook_url)
        return _spawned(base, spawn, pull) if spawn else f"{base}/hub/user-redirect/{pull}"
    # BinderHub: the repository is one path segment, so its slashes must be escaped too.
    query = urlencode({"urlpath": _lab_path(notebook)}, quote_via=quote)
    return f"{base}/v2/git/{quote(repo_url, safe='')}/{quote(ref, safe='')}?{query}"


def server_launch_url(server_url: str, repo_url: str, *, notebook: str, target_dir: str, ref: str = "main") -> str:
    """The link that has one single-user Jupyter server (no hub) pull ``repo_url`` with nbgitpuller and open
    ``notebook``: the path a hub's link leads to after ``/hub/user-redirect/``, at the server's own base URL."""
    base = _check_base(server_url, "Jupyter server URL")
    _check_base(repo_url, "repository URL")
    _check_relpath(notebook, "notebook path")
    return f"{base}/{_pull_path('nbgitpuller', repo_url, ref, notebook, target_dir, '')}"


def public_url(
    base_url: str, kind: str, bid: str, token: str | None = None, *, hub: str = "", rid: str = "", path: str = ""
) -> str:
    """A public link of handle ``bid`` on the service at ``base_url``: the one place that knows the URL layout.

    ``kind``: ``landing``, ``download``, ``launch`` (``hub``) take a read token as ``?t=``; ``git``, ``files``
    (one member by its ``path``; the bare prefix without one) and ``notebook`` (``path`` = the notebook's name) carry
    the git token in the path (git clients and relative reads drop query strings; browsers and JupyterLab name a
    fetched file after the URL path's last segment; a member's URL + ``?signed=1``, built by the runtime from the
    files prefix, asks for a signed read of it); ``manifest``, ``returns`` and ``return`` (``rid``) take none.
    """
    base = base_url
    if kind == "git":
        return f"{base}/git/{token}/{bid}.git"
    if kind == "files":
        return f"{base}/files/{token}/{bid}/" + quote(path, safe="/")
    if kind == "notebook":
        return f"{base}/nb/{token}/{bid}/" + quote(path, safe="/")
    if kind in ("manifest", "returns", "return"):
        api = f"{base}/api/v1/bundles/{bid}"
        return {"manifest": api, "returns": f"{api}/returns", "return": f"{api}/returns/{rid}"}[kind]
    pages = {
        "landing": f"{base}/b/{bid}",
        "download": f"{base}/b/{bid}/download",
        "local": f"{base}/b/{bid}/local",  # local mode: into JupyterLab on this computer
        # ESAP facility names hold spaces and slashes ("SURF/ASTRON JupyterHub"): one encoded path segment.
        "launch": f"{base}/b/{bid}/launch/{quote(hub, safe='')}",
    }
    if kind not in pages:
        raise ValueError(f"unknown link kind {kind!r}")
    return f"{pages[kind]}?t={token}"
