"""A minimal WSGI app serving bundles' repositories by id, without auth: for tests and benchmarks only.

The service serves repositories through ``server/git.py`` (token checked, handle read); this app skips both so
``bench clone`` and tests/integration/test_gitrepo.py measure and exercise the build and the CGI bridge alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from nbpack import ids
from nbpack.bundle.remote import Remote
from nbpack.errors import NbpackError, NotFound
from nbpack.hub.git import ensure_repo
from nbpack.hub.git_http import http_backend, phrase, plain, refusal

__all__ = ["make_wsgi_app"]


def make_wsgi_app(
    cache_dir: Path,
    open_bundle_by_id: Callable[[str], BinaryIO],
    remote_for: Callable[[str], Remote | None] = lambda _bid: None,
) -> Callable:
    """A WSGI app serving ``/<bundle_id>.git/...`` read-only from ``cache_dir`` (no auth: tests, benchmarks).

    ``remote_for(bundle_id)``: what that bundle's tree leaves out (see ``build_repo``); default nothing.
    """
    route = re.compile(rf"^/({ids.pattern(ids.CONTENT + ids.HANDLE)})\.git(/.*)$")

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = route.match(environ.get("PATH_INFO", ""))
        if not match:
            status, headers, body = plain("404 Not Found", "not found")
        else:
            bid, rest = match.groups()
            refused = refusal(environ.get("REQUEST_METHOD", "GET"), rest, environ.get("QUERY_STRING", ""))
            if refused:
                status, headers, body = plain(*refused)
            else:
                try:
                    repo = ensure_repo(lambda: open_bundle_by_id(bid), bid, cache_dir, remote=remote_for(bid))
                except NotFound as exc:
                    status, headers, body = plain("404 Not Found", str(exc))
                except NbpackError as exc:
                    code = str(exc.http_status)
                    status, headers, body = plain(f"{code} {phrase(code)}", str(exc))
                else:
                    status, headers, body = http_backend(environ, repo, rest)
        start_response(status, headers)
        return body

    return app
