"""The S3 backend's small single requests (a return's ledger compare-and-swap, its zip from memory, its create-once
manifest) sent by obstore, a Rust S3 client, instead of botocore.

Why: a small return costs the service three PUTs, and botocore spends ~1 ms of the worker's one Python core on each
(event hooks, request building, SigV4, http.client), where obstore spends ~0.15 ms and holds no GIL while it
waits (bench/README.md, "Ingest: workers, body reads, obstore"). Everything else (multipart, presigning, listing,
streamed GETs, copies) stays with botocore. Both clients sign with the same credentials: obstore asks botocore's
session for them, so a refreshed role credential reaches both; both send only to the configured endpoint.

Errors come back as the backend's (``NotFound``, ``StorageError`` naming the bucket and endpoint, never a secret);
a failed condition is an answer, not an error: ``create`` says False, ``put_if_match`` None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nbpack.errors import NotFound, StorageError

if TYPE_CHECKING:  # obstore's option types exist for type checkers only
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Credential

__all__ = ["SmallRequests", "make"]

# As the botocore client (s3_client): a short connect timeout, a bounded read, 2 retries within half a minute —
# obstore's default (10 retries over 3 minutes) would hold a worker thread far past what a client waits.
_CONNECT_TIMEOUT, _TIMEOUT, _RETRIES, _RETRY_TIMEOUT = "3s", "20s", 2, timedelta(seconds=30)
# How long obstore may reuse one frozen copy of botocore's credentials before asking again (botocore refreshes a
# role's credentials well before they expire; this only bounds how stale obstore's copy may be).
_CREDENTIALS_TTL = timedelta(minutes=5)


class SmallRequests:
    """Single PUTs and GETs of whole small objects in one bucket (keys are full keys, the backend's prefix in)."""

    def __init__(self, store: Any, bucket: str, prefix: str, where: str) -> None:
        self._store, self.bucket, self._where = store, bucket, where
        self._prefix = f"{prefix}/" if prefix else ""

    @contextlib.contextmanager
    def _errors(self, full: str) -> Iterator[None]:
        what = full.removeprefix(self._prefix)  # messages name the key as the backend's callers do
        from obstore.exceptions import (
            BaseError,
            NotFoundError,
            PermissionDeniedError,
            UnauthenticatedError,
        )

        try:
            yield
        except (NotFoundError, FileNotFoundError) as e:  # obstore raises the builtin one for a 404
            raise NotFound(f"no stored object {what}") from e
        except (PermissionDeniedError, UnauthenticatedError, PermissionError) as e:
            raise StorageError(f"S3 at {self._where} refused access to bucket {self.bucket}: check credentials") from e
        except BaseError as e:
            raise StorageError(f"S3 error ({type(e).__name__}) on {what} at {self._where}") from e
        except OSError as e:  # the connection itself (obstore raises the builtin errors for some of these)
            raise StorageError(f"S3 endpoint {self._where} unreachable ({type(e).__name__})") from e

    def put(self, key: str, data: bytes) -> str:
        """One PUT; the new ETag (without quotes)."""
        import obstore

        with self._errors(key):
            return _tag(obstore.put(self._store, key, data))

    def create(self, key: str, data: bytes) -> str | None:
        """One PUT with If-None-Match: the new ETag, or None when the key exists."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        with self._errors(key):
            try:
                return _tag(obstore.put(self._store, key, data, mode="create"))
            except (AlreadyExistsError, PreconditionError, FileExistsError):
                return None

    def replace(self, key: str, data: bytes, tag: str) -> str | None:
        """One PUT with If-Match ``tag``: the new ETag, or None when the object changed or went."""
        import obstore
        from obstore.exceptions import NotFoundError, PreconditionError

        with self._errors(key):
            try:
                return _tag(obstore.put(self._store, key, data, mode={"e_tag": f'"{tag}"'}))
            except (PreconditionError, NotFoundError, FileNotFoundError):
                return None

    def read_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its ETag, from one GET."""
        import obstore

        with self._errors(key):
            got = obstore.get(self._store, key)
            return bytes(got.bytes()), str(got.meta.get("e_tag") or "").strip('"')


def _tag(result: Any) -> str:
    return str(result.get("e_tag") or "").strip('"')


def make(bucket: str, prefix: str, endpoint_url: str | None, region: str, where: str) -> SmallRequests | None:
    """A client for ``bucket``, or None when obstore is not installed or botocore finds no credentials (botocore's
    client then sends these requests too, and says what is missing)."""
    try:
        from obstore.store import S3Store
    except ImportError:
        return None
    import boto3

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        return None

    def provide() -> S3Credential:
        frozen = credentials.get_frozen_credentials()
        out: S3Credential = {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "expires_at": datetime.now(UTC) + _CREDENTIALS_TTL,
        }
        if frozen.token:
            out["token"] = frozen.token
        return out

    options: ClientConfig = {"connect_timeout": _CONNECT_TIMEOUT, "timeout": _TIMEOUT}
    config: S3Config = {"region": region, "virtual_hosted_style_request": False}
    if endpoint_url:
        config["endpoint"] = endpoint_url
        # Plain http only where the operator configured an http endpoint (a SeaweedFS next to the service).
        options["allow_http"] = endpoint_url.startswith("http://")
    retry: RetryConfig = {"max_retries": _RETRIES, "retry_timeout": _RETRY_TIMEOUT}
    store = S3Store(bucket, config=config, client_options=options, retry_config=retry, credential_provider=provide)
    return SmallRequests(store, bucket, prefix, where)
