"""Tokens (scope, expiry, rotation, tampering) and launch-link shapes for nbgitpuller and BinderHub."""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from itsdangerous import URLSafeSerializer
from tornado.httputil import parse_qs_bytes

from nbpack.errors import Forbidden, InvalidInput
from nbpack.hub.links import check_token, launch_url, make_token, target_dir_for

BID_A = "b-" + "a" * 24
BID_B = "b-" + "b" * 24
SECRET = "s3cret-key-for-tests"


def _refused(code: str, *args) -> Forbidden:
    with pytest.raises(Forbidden) as info:
        check_token(*args)
    assert info.value.code == code
    assert info.value.http_status == 403
    return info.value


def test_round_trip_gives_payload_and_is_short_and_url_safe():
    token = make_token(SECRET, "return", BID_A, 3600)
    payload = check_token(SECRET, token, "return", BID_A)
    assert payload["bundle_id"] == BID_A and payload["scope"] == "return"
    assert 3590 <= payload["exp"] - time.time() <= 3601
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)
    assert len(token) < 160


def test_tampered_token_is_invalid():
    token = make_token(SECRET, "read", BID_A, 600)
    body, sig = token.rsplit(".", 1)
    # The first character: the last one of a base64 HMAC also carries padding bits, and a change there can decode
    # to the same signature (this test failed about one run in sixteen).
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    _refused("token_invalid", SECRET, f"{body}.{flipped}", "read", BID_A)
    _refused("token_invalid", SECRET, "x" + token, "read", BID_A)
    _refused("token_invalid", SECRET, "", "read", BID_A)
    _refused("token_invalid", SECRET, "a" * 5000, "read", BID_A)


def test_payload_swapped_under_old_signature_is_invalid():
    a = make_token(SECRET, "read", BID_A, 600)
    b = make_token(SECRET, "read", BID_B, 600)
    forged = b.split(".")[0] + "." + a.split(".")[1]
    _refused("token_invalid", SECRET, forged, "read", BID_B)


def test_expired_token_refused():
    # Craft a correctly signed token whose exp is in the past (same salt and signer as nbpack).
    ser = URLSafeSerializer(
        SECRET,
        salt="nbpack.token.read",
        signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
    )
    past = ser.dumps({"b": BID_A, "s": "read", "exp": int(time.time()) - 5})
    err = _refused("token_expired", SECRET, past, "read", BID_A)
    assert "expired" in err.message


def test_short_lived_token_expires(clock):
    token = make_token(SECRET, "read", BID_A, 1)
    assert check_token(SECRET, token, "read", BID_A)["bundle_id"] == BID_A
    clock.advance(0.99)
    assert check_token(SECRET, token, "read", BID_A)["exp"] == int(clock.time) + 1  # alive to its last instant
    clock.advance(0.01)
    _refused("token_expired", SECRET, token, "read", BID_A)


def test_wrong_key_is_invalid():
    token = make_token("another-key", "read", BID_A, 600)
    _refused("token_invalid", SECRET, token, "read", BID_A)


def test_key_rotation_first_signs_all_verify():
    old = make_token("old-key", "return", BID_A, 600)
    new = make_token(["new-key", "old-key"], "return", BID_A, 600)
    assert check_token(["new-key", "old-key"], old, "return", BID_A)["scope"] == "return"
    assert check_token(["new-key", "old-key"], new, "return", BID_A)["scope"] == "return"
    # The new token is signed by the first key only.
    assert check_token("new-key", new, "return", BID_A)["bundle_id"] == BID_A
    _refused("token_invalid", "old-key", new, "return", BID_A)
    # Once the old key is retired its tokens stop working.
    _refused("token_invalid", ["new-key"], old, "return", BID_A)


def test_read_and_return_scopes_do_not_mix():
    read = make_token(SECRET, "read", BID_A, 600)
    ret = make_token(SECRET, "return", BID_A, 600)
    _refused("token_scope", SECRET, read, "return", BID_A)
    _refused("token_scope", SECRET, ret, "read", BID_A)


def test_token_for_one_bundle_refused_on_another():
    token = make_token(SECRET, "return", BID_A, 600)
    err = _refused("token_bundle", SECRET, token, "return", BID_B)
    assert BID_A not in err.message


@pytest.mark.parametrize(
    "args",
    [
        (SECRET, "write", BID_A, 60),
        (SECRET, "read", BID_A, 0),
        (SECRET, "read", BID_A, -1),
        (SECRET, "read", "", 60),
        ("", "read", BID_A, 60),
        ([], "read", BID_A, 60),
    ],
)
def test_make_token_refuses_bad_arguments(args):
    with pytest.raises(InvalidInput):
        make_token(*args)


def test_target_dir_is_stable_and_safe():
    d = target_dir_for(BID_A, "M31 / Andromeda: ü & #1 (LOFAR)")
    assert d == target_dir_for(BID_A, "M31 / Andromeda: ü & #1 (LOFAR)")
    assert re.fullmatch(r"[a-z0-9-]+", d)
    assert d.startswith("m31-andromeda-u-1-lofar") and d.endswith("-aaaaaaaa")
    assert target_dir_for(BID_A, "☃☃") == "bundle-aaaaaaaa"
    assert target_dir_for(BID_B, "x" * 300) == "x" * 40 + "-bbbbbbbb"
    assert target_dir_for(BID_A, "same") != target_dir_for(BID_B, "same")


AWKWARD = ["my notebook.ipynb", "dir/Ü spaces & more #1.ipynb", "a?b=c%20d.ipynb", "naïve+plus.ipynb"]


@pytest.mark.parametrize("notebook", AWKWARD)
@pytest.mark.parametrize("hub", ["https://hub.example.org", "https://hub.example.org/"])
def test_nbgitpuller_link_round_trips(notebook, hub):
    repo = "https://nbpack.example.org/git/b-aaaa/token.x_y-z/bundle.git"
    target = target_dir_for(BID_A, "Déjà vu & #2")
    url = launch_url(hub, "nbgitpuller", repo, ref="main", notebook=notebook, target_dir=target)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "hub.example.org")
    assert parts.path == "/hub/user-redirect/git-pull"
    assert parts.fragment == ""
    q = parse_qs(parts.query, strict_parsing=True)
    assert set(q) == {"repo", "branch", "urlpath", "targetpath"}
    assert all(len(v) == 1 for v in q.values())
    assert q["repo"] == [repo] and q["branch"] == ["main"] and q["targetpath"] == [target]
    urlpath = q["urlpath"][0]
    # The hub appends urlpath to its base URL as is, so it must itself be a clean URL path...
    assert not set(urlpath) & set(" #?&")
    # ...pointing into the very folder nbgitpuller clones into.
    assert unquote(urlpath) == f"lab/tree/{target}/{notebook}"
    # Tornado (which nbgitpuller's handler reads arguments with) decodes the same values.
    args = parse_qs_bytes(parts.query)
    assert args["targetpath"] == [target.encode()] and args["urlpath"] == [urlpath.encode()]
    assert urlpath.startswith(f"lab/tree/{q['targetpath'][0]}/")


@pytest.mark.parametrize("notebook", AWKWARD)
@pytest.mark.parametrize("binder", ["https://mybinder.org", "https://mybinder.org/", "https://b.example.org/binder/"])
def test_binderhub_link_shape(notebook, binder):
    repo = "https://nbpack.example.org/git/b-aaaa/tok/bundle.git"
    url = launch_url(binder, "binderhub", repo, ref="v1.0", notebook=notebook)
    parts = urlsplit(url)
    prefix = urlsplit(binder).path.rstrip("/")
    segments = parts.path.removeprefix(prefix + "/").split("/")
    assert segments[:2] == ["v2", "git"] and len(segments) == 4
    assert unquote(segments[2]) == repo and "/" not in segments[2] and ":" not in segments[2]
    assert segments[3] == "v1.0"
    assert "//" not in parts.path
    q = parse_qs(parts.query, strict_parsing=True)
    assert not set(q["urlpath"][0]) & set(" #?&")
    assert unquote(q["urlpath"][0]) == f"lab/tree/{notebook}"


def test_binderhub_matches_esap_shape_for_plain_names():
    repo = "https://github.com/o/r"
    url = launch_url("https://mybinder.org/", "binderhub", repo, ref="HEAD", notebook="nb.ipynb")
    assert url == "https://mybinder.org/v2/git/https%3A%2F%2Fgithub.com%2Fo%2Fr/HEAD?urlpath=lab%2Ftree%2Fnb.ipynb"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "voila"}, "launch mode"),
        ({"hub_url": "hub.example.org"}, "hub URL"),
        ({"hub_url": "ftp://hub.example.org"}, "hub URL"),
        ({"repo_url": ""}, "repository URL"),
        ({"notebook": "../etc/passwd.ipynb"}, "notebook path"),
        ({"notebook": "/abs.ipynb"}, "notebook path"),
        ({"target_dir": ""}, "target folder"),
        ({"target_dir": "a/../b"}, "target folder"),
        ({"ref": "has space"}, "git ref"),
    ],
)
def test_launch_url_refuses_bad_input(kwargs, message):
    args = {
        "hub_url": "https://hub.example.org",
        "mode": "nbgitpuller",
        "repo_url": "https://git.example.org/r.git",
        "notebook": "nb.ipynb",
        "target_dir": "t-aaaa",
    } | kwargs
    with pytest.raises(InvalidInput, match=message):
        launch_url(args.pop("hub_url"), args.pop("mode"), args.pop("repo_url"), **args)
