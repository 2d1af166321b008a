"""The Content-Disposition header of a download: one rule for the service's responses and presigned S3 GETs."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

__all__ = ["content_disposition"]


def content_disposition(filename: str) -> str:
    """An RFC 6266 ``attachment`` header value: a quoted ASCII fallback and the exact name as ``filename*``.

    Quotes, backslashes, slashes, control and non-ASCII characters never reach the quoted form (a header must be
    Latin-1, and a quote would end the value); ``filename*`` percent-encodes every byte outside RFC 5987's set.
    """
    name = filename.replace("/", "_").replace("\\", "_") or "download"
    plain = unicodedata.normalize("NFKD", name)
    fallback = "".join(
        "_" if (c in '"' or not 32 <= ord(c) < 127) else c for c in plain if not unicodedata.combining(c)
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
