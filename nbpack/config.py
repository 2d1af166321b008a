"""Service configuration: ``NBPACK_*`` environment variables, or a TOML file named by ``NBPACK_CONFIG``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbpack.bundle import archive
from nbpack.errors import InvalidInput
from nbpack.netguard import AddressPolicy

__all__ = [
    "Config",
    "load_config",
    "hash_api_key",
    "local_secret",
    "parse_api_keys",
    "parse_tenant_list",
    "s3_endpoint_from_env",
    "s3_region_from_env",
    "DEFAULT_TENANT",
    "DEFAULT_S3_REGION",
]

DAY = 86400
DEFAULT_TENANT = "default"
DEFAULT_S3_REGION = "us-east-1"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def hash_api_key(key: str) -> str:
    """How API keys are kept in memory and may be written in config: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_tenant_list(name: str, raw: Any) -> dict[str, list[str]]:
    """``"esap-prod=A,esap-test=B,esap-prod=C"`` (or a list) → {tenant: [A, C], ...}, in order; a tenant may repeat.

    Only the first ``=`` splits, so values may hold ``=`` (base64 padding). The values are never echoed in errors.
    """
    items = raw if isinstance(raw, list) else str(raw or "").split(",")
    out: dict[str, list[str]] = {}
    for n, item in enumerate((str(i).strip() for i in items), 1):
        if not item:
            continue
        tenant, sep, value = item.partition("=")
        if not sep or not _TENANT_RE.match(tenant.strip()) or not value.strip():
            raise InvalidInput(f"NBPACK_{name.upper()}: item {n} is not tenant=value")
        out.setdefault(tenant.strip(), []).append(value.strip())
    return out


def parse_api_keys(raw: Any) -> dict[str, str]:
    """``"esap-prod=KEY1,esap-test=KEY2,KEY3"`` (or a list) → {key hash: tenant}; a bare key is tenant ``default``.

    ``name=KEY`` only when ``name`` is a tenant name and the text after the first ``=`` neither is empty nor starts
    with ``=`` (so base64 padding such as ``abc==`` stays a bare key).
    """
    items = raw if isinstance(raw, list) else str(raw or "").split(",")
    out: dict[str, str] = {}
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        tenant, key = DEFAULT_TENANT, item
        name, sep, rest = item.partition("=")
        if sep and rest and not rest.startswith("=") and _TENANT_RE.match(name):
            tenant, key = name, rest.strip()
        digest = key if key.startswith("sha256:") else hash_api_key(key)
        if out.get(digest, tenant) != tenant:
            raise InvalidInput("NBPACK_API_KEYS gives one key to two tenants")
        out[digest] = tenant
    return out


@dataclass
class Config:
    """Everything the service needs; built once at start-up."""

    secret_key: list[str]
    api_key_hashes: list[str]
    storage_url: str
    s3_endpoint: str | None = None
    s3_region: str = DEFAULT_S3_REGION
    public_url: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path(".nbpack-cache"))
    link_ttl: int = 30 * DAY
    return_ttl: int = 30 * DAY
    max_link_ttl: int = 365 * DAY
    # Returned outputs larger than this go straight to S3 through presigned PUT URLs; 0 turns that off. 8 MiB: where
    # a presigned PUT (one request more: the URL) stops costing time — 1-3 MiB outputs took 1.3-1.5x as long that way,
    # 6-16 MiB the same, a 64 MB one 0.78x, and its bytes never pass through a worker (bench/ingest_crossover.py).
    direct_upload_threshold: int = 8 << 20
    max_bundle_bytes: int = 8 << 30
    return_limits: archive.Limits = field(
        default_factory=lambda: archive.Limits(max_entries=5000, max_member=4 << 30, max_total=8 << 30, max_ratio=200.0)
    )
    hubs_file: Path | None = None
    esap_facilities_file: Path | None = None
    payloads_file: Path | None = None
    # Where payload repositories may be fetched from beyond public addresses (NBPACK_PAYLOAD_ALLOW: host names,
    # addresses, CIDR networks); local mode adds loopback. A request names repositories: this bounds where to.
    payload_policy: AddressPolicy = field(default_factory=AddressPolicy)
    # The default tenant's webhook secret (older single-secret form); ``webhook_secrets`` names each tenant's.
    webhook_secret: str | None = None
    local_mode: bool = False
    # tenant -> its webhook signing secrets (the first signs; all sign, for rotation). Never logged.
    webhook_secrets: dict[str, list[str]] = field(default_factory=dict)
    # tenant -> callback origins the operator allows (``https://host``, ``http://127.0.0.1:8080``, a bare host);
    # a tenant with a list may call back only there, and only listed hosts may be private or plain http.
    webhook_allow: dict[str, list[str]] = field(default_factory=dict)
    # Webhooks go out on at most this many threads per replica, this many at once per tenant and per callback host.
    webhook_workers: int = 8
    webhook_per_tenant: int = 2
    webhook_per_host: int = 2
    webhook_attempts: int = 12
    webhook_connect_timeout: float = 3.0
    webhook_timeout: float = 10.0
    # A callback host failing this many times in a row is left alone for webhook_breaker_cooldown seconds.
    webhook_breaker_failures: int = 5
    webhook_breaker_cooldown: float = 30.0
    # How often a replica looks at the outbox in storage (an ingest on the replica looks at once).
    webhook_poll: float = 2.0
    # Request bodies: JSON (create, blob requests) and multipart creates; zips have max_bundle_bytes / return limits.
    max_json_bytes: int = 8 << 20
    max_form_bytes: int = 1 << 30
    # /metrics answers only with ``Authorization: Bearer <token>``; unset, it is open in local mode only.
    metrics_token: str | None = None
    # key hash -> tenant name (``api_key_hashes`` lists the same hashes)
    api_key_tenants: dict[str, str] = field(default_factory=dict)
    handle_ttl: int = 90 * DAY
    max_handle_ttl: int = 5 * 365 * DAY
    max_returns_per_bundle: int = 100
    max_return_bytes_per_bundle: int = 20 << 30
    tenant_quota_bytes: int = 0
    return_retention: int = 0
    gc_grace: int = 3600
    gc_interval: int = 0
    # Catalogs of this many bytes or more stay out of a handle's git tree (read lazily from /files); 0 = none.
    lazy_min_bytes: int = 4 << 20
    # On S3, a handle's zip of this many bytes or more is downloaded from one whole-zip object composed inside the
    # store (service/wholezip.py) by a short-lived presigned URL, not streamed through a worker; 0 = always stream.
    whole_zip_min_bytes: int = 32 << 20
    # Lazy catalog reads go straight to the object store through short-lived presigned GET URLs of one content object
    # each (when the backend signs: S3), so kernels must reach the store, as direct uploads already assume; off:
    # every byte goes through the service's files URL. The URLs live signed_read_ttl seconds (at most 3600).
    signed_reads: bool = True
    signed_read_ttl: int = 300
    # Local mode only: the single-user Jupyter server on this computer (URL with ?token=) the landing page opens
    # bundles in (`nbpack serve` starts one; NBPACK_LOCAL_JUPYTER attaches to a running one).
    local_jupyter: str | None = None

    @property
    def bundle_limits(self) -> archive.Limits:
        """A pushed bundle's zip limits: the defaults, raised with ``max_bundle_bytes`` — a catalog is mostly one
        stored Parquet member, so a bundle the operator allows (a 10 GiB catalog) must not be refused as an 8 GiB
        member; the ratio and entry limits stay as they are."""
        base = archive.DEFAULT_LIMITS
        return replace(
            base,
            max_member=max(base.max_member, self.max_bundle_bytes),
            max_total=max(base.max_total, 2 * self.max_bundle_bytes),
        )


def s3_endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint the environment names: ``NBPACK_S3_ENDPOINT``, else ``AWS_ENDPOINT_URL``; None for AWS."""
    env = os.environ if env is None else env
    return env.get("NBPACK_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or None


def s3_region_from_env(env: Mapping[str, str] | None = None) -> str:
    """The S3 region the environment names: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else us-east-1."""
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_S3_REGION


def _int(name: str, value: Any) -> int:
    try:
        return int(str(value).replace("_", ""))
    except ValueError:
        raise InvalidInput(f"{name}={value!r} is not a whole number") from None


def local_secret(root: Path, name: str = ".nbpack-secret-key") -> str:
    """A local-mode secret (signing key, API key) created once beside the storage, so it survives restarts."""
    path = root / name
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


# Whole-number settings, each named once: all read from NBPACK_<NAME>; the last two groups are range-checked where
# they are read.
_WHOLE = ("link_ttl", "return_ttl", "max_link_ttl", "max_bundle_bytes", "direct_upload_threshold")
_POSITIVE = ("handle_ttl", "max_handle_ttl", "max_returns_per_bundle", "max_return_bytes_per_bundle")
_ZERO_OR_MORE = (
    "tenant_quota_bytes",
    "return_retention",
    "gc_grace",
    "gc_interval",
    "lazy_min_bytes",
    "whole_zip_min_bytes",
)


def load_config(
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    local_mode: bool = False,
    default_public_url: str | None = None,
    serving: bool = True,
) -> Config:
    """Build the config from ``NBPACK_*`` variables (and ``NBPACK_CONFIG`` TOML), then ``overrides``.

    Without a secret key only local mode starts (``nbpack serve``), with a key kept beside the storage.
    ``serving=False`` (maintenance commands such as ``nbpack gc``, which bake no links) needs no public URL.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if env.get("NBPACK_CONFIG"):
        try:
            values.update({k.lower(): v for k, v in tomllib.loads(Path(env["NBPACK_CONFIG"]).read_text()).items()})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"NBPACK_CONFIG {env['NBPACK_CONFIG']}: cannot read ({exc})") from None
    for key, value in env.items():
        if key.startswith("NBPACK_") and key != "NBPACK_CONFIG":
            values[key[len("NBPACK_") :].lower()] = value
    values.update({k.lower(): v for k, v in (overrides or {}).items()})
    storage = str(values.get("storage") or ("./nbpack-data" if local_mode else ""))
    if not storage:
        raise InvalidInput("NBPACK_STORAGE is not set: give a folder path or s3://bucket/prefix")
    secret = values.get("secret_key")
    if not secret:
        if not local_mode:
            raise InvalidInput(
                "NBPACK_SECRET_KEY is not set: the service signs links and refuses to start without"
                " one (only `nbpack serve` runs without it, with a local key)"
            )
        if storage.startswith(("s3://", "memory://")):
            raise InvalidInput("local mode keeps its key beside a local folder; set NBPACK_SECRET_KEY for S3")
        secret = local_secret(Path(storage.removeprefix("file://")))
    secrets_list = [s.strip() for s in (secret if isinstance(secret, list) else str(secret).split(",")) if s.strip()]
    if any(len(s) < 16 for s in secrets_list):
        raise InvalidInput("NBPACK_SECRET_KEY must be at least 16 characters")
    tenants = parse_api_keys(values.get("api_keys") or [])
    cfg = Config(
        secret_key=secrets_list,
        api_key_hashes=list(tenants),
        storage_url=storage,
        local_mode=local_mode,
        api_key_tenants=tenants,
    )
    cfg.s3_endpoint = values.get("s3_endpoint") or s3_endpoint_from_env(env)
    cfg.s3_region = str(values.get("s3_region") or "") or s3_region_from_env(env)
    cfg.public_url = (values.get("public_url") or "").rstrip("/") or None
    cfg.cache_dir = Path(
        values.get("cache_dir")
        or (
            Path(storage) / ".cache"
            if not storage.startswith(("s3://", "memory://"))
            else Path(os.environ.get("TMPDIR", "/tmp")) / "nbpack-cache"
        )
    )
    for name in (*_WHOLE, *_POSITIVE, *_ZERO_OR_MORE):
        if values.get(name) not in (None, ""):
            setattr(cfg, name, _int(f"NBPACK_{name.upper()}", values[name]))
    for name in _POSITIVE:
        if getattr(cfg, name) <= 0:
            raise InvalidInput(f"NBPACK_{name.upper()} must be a positive whole number")
    for name in _ZERO_OR_MORE:
        if getattr(cfg, name) < 0:
            raise InvalidInput(f"NBPACK_{name.upper()} must be 0 or a positive whole number")
    if cfg.direct_upload_threshold < 0:
        raise InvalidInput("NBPACK_DIRECT_UPLOAD_THRESHOLD must be 0 (off) or a number of bytes")
    _signed_reads(cfg, values)
    for name in ("hubs_file", "esap_facilities_file", "payloads_file"):
        if values.get(name):
            setattr(cfg, name, Path(values[name]))
    if values.get("hubs") and not cfg.hubs_file:
        cfg.hubs_file = Path(values["hubs"])
    if values.get("payloads") and not cfg.payloads_file:
        cfg.payloads_file = Path(values["payloads"])
    cfg.payload_policy = AddressPolicy.parse(
        values.get("payload_allow"), setting="NBPACK_PAYLOAD_ALLOW", loopback=local_mode
    )
    _webhooks(cfg, values)
    for name in ("max_json_bytes", "max_form_bytes"):
        if values.get(name) not in (None, ""):
            setattr(cfg, name, _int(f"NBPACK_{name.upper()}", values[name]))
            if getattr(cfg, name) < 1:
                raise InvalidInput(f"NBPACK_{name.upper()} must be at least 1")
    cfg.metrics_token = str(values.get("metrics_token") or "") or None
    # Never outside local mode: the server's token would go to whoever holds a landing link.
    cfg.local_jupyter = (str(values.get("local_jupyter") or "") or None) if local_mode else None
    cfg.public_url = cfg.public_url or default_public_url
    if not cfg.public_url and not local_mode and serving:
        # Else the Host header of whoever creates a bundle decides where its returns are sent.
        raise InvalidInput(
            "NBPACK_PUBLIC_URL is not set: the service bakes it into every bundle's return endpoint"
            " (only `nbpack serve` runs without it)"
        )
    if cfg.public_url and not cfg.public_url.startswith(("https://", "http://")):
        raise InvalidInput(f"NBPACK_PUBLIC_URL={cfg.public_url!r} must start with https:// or http://")
    if values.get("max_return_bytes"):
        limit = _int("NBPACK_MAX_RETURN_BYTES", values["max_return_bytes"])
        cfg.return_limits = archive.Limits(
            max_entries=cfg.return_limits.max_entries,
            max_member=limit,
            max_total=limit,
            max_ratio=cfg.return_limits.max_ratio,
        )
    return cfg


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _signed_reads(cfg: Config, values: Mapping[str, Any]) -> None:
    """NBPACK_SIGNED_READS (a boolean) and NBPACK_SIGNED_READ_TTL (seconds, 1..3600)."""
    raw = values.get("signed_reads")
    if raw not in (None, ""):
        if isinstance(raw, bool):
            cfg.signed_reads = raw
        elif str(raw).strip().lower() in _BOOLS:
            cfg.signed_reads = _BOOLS[str(raw).strip().lower()]
        else:
            raise InvalidInput(f"NBPACK_SIGNED_READS={raw!r} is not a boolean (on/off, true/false, 1/0)")
    if values.get("signed_read_ttl") not in (None, ""):
        cfg.signed_read_ttl = _int("NBPACK_SIGNED_READ_TTL", values["signed_read_ttl"])
        # Short by design: an issued URL outlives a revocation by at most this long. 1 s is for tests.
        if not 1 <= cfg.signed_read_ttl <= 3600:
            raise InvalidInput("NBPACK_SIGNED_READ_TTL must be between 1 and 3600 seconds")


_WEBHOOK_INTS = (
    "webhook_workers",
    "webhook_per_tenant",
    "webhook_per_host",
    "webhook_attempts",
    "webhook_breaker_failures",
)
_WEBHOOK_SECONDS = ("webhook_connect_timeout", "webhook_timeout", "webhook_breaker_cooldown", "webhook_poll")


def _webhooks(cfg: Config, values: Mapping[str, Any]) -> None:
    """Webhook secrets per tenant, the callback allow-list and the delivery limits."""
    cfg.webhook_secret = values.get("webhook_secret") or None
    cfg.webhook_secrets = parse_tenant_list("webhook_secrets", values.get("webhook_secrets"))
    if cfg.webhook_secret and DEFAULT_TENANT not in cfg.webhook_secrets:
        cfg.webhook_secrets[DEFAULT_TENANT] = [cfg.webhook_secret]
    for tenant, given in cfg.webhook_secrets.items():
        for secret in given:
            _check_webhook_secret(tenant, secret)
    cfg.webhook_allow = parse_tenant_list("webhook_allow", values.get("webhook_allow"))
    for name in _WEBHOOK_INTS:
        if values.get(name) not in (None, ""):
            setattr(cfg, name, _int(f"NBPACK_{name.upper()}", values[name]))
            if getattr(cfg, name) < 1:
                raise InvalidInput(f"NBPACK_{name.upper()} must be at least 1")
    for name in _WEBHOOK_SECONDS:
        if values.get(name) not in (None, ""):
            try:
                seconds = float(values[name])
            except (TypeError, ValueError):
                seconds = -1.0
            if not 0 < seconds <= 3600:
                raise InvalidInput(f"NBPACK_{name.upper()} must be a number of seconds above 0 (at most 3600)")
            setattr(cfg, name, seconds)


def _check_webhook_secret(tenant: str, secret: str) -> None:
    # The message names the tenant, never the secret: configuration errors end up in logs.
    if secret.startswith("whsec_"):
        body = secret[len("whsec_") :]
        try:
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"the webhook secret of tenant {tenant} is not whsec_ followed by base64") from None
        if len(key) < 16:
            raise InvalidInput(f"the webhook secret of tenant {tenant} must decode to at least 16 bytes")
    elif len(secret) < 16:
        raise InvalidInput(f"the webhook secret of tenant {tenant} must be at least 16 characters")
