"""The botocore client every S3 backend uses: its configuration, and how it sends small bodies."""

from __future__ import annotations

from typing import Any

from nbpack.store.api import PART_SIZE

__all__ = ["make"]


def make(endpoint_url: str | None, region: str) -> Any:
    """An S3 client (path-style, SigV4, bounded retries and timeouts) that sends small PUT bodies at once."""
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=20,
        tcp_keepalive=True,
        # No CRC32 pass over every body sent and received: a PUT's body is already covered by its SigV4 payload
        # hash (plain HTTP) or TLS, zip members carry their own CRC32 and sha256, and presigned PUTs still bind
        # the sha256 the uploader declared.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
    # Registered last, so it runs after botocore's own handler of the same event, which makes every PUT body wait for
    # "100 Continue" (one round trip more per request: a small return's ledger, zip and manifest PUTs paid it three
    # times, bench/README.md "Small returns kept in memory"). A body under one part costs the server less to refuse
    # after reading it than that round trip; parts and big PUTs keep it.
    client.meta.events.register_last("before-call.s3", _no_expect_under_a_part)
    return client


def _no_expect_under_a_part(params: dict[str, Any], **_: Any) -> None:
    from botocore.utils import determine_content_length

    headers, body = params.get("headers") or {}, params.get("body")
    if "Expect" in headers and body is not None:
        size = determine_content_length(body)
        if size is not None and size < PART_SIZE:
            del headers["Expect"]
