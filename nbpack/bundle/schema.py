"""The bundle and return formats, defined once as JSON Schemas shipped in ``nbpack.schemas``."""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from typing import Any

# jsonschema imports rfc3987_syntax when it is installed (other packages pull it in) only to check "iri"
# formats, which nbpack schemas never use; building its grammar costs seconds on every CLI start.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import jsonschema  # noqa: E402

from nbpack.errors import InvalidBundle  # noqa: E402

__all__ = ["BUNDLE_FORMAT_VERSION", "RETURN_FORMAT_VERSION", "SCHEMAS", "load_schema", "iter_errors", "validate"]

BUNDLE_FORMAT_VERSION = "1.0"
RETURN_FORMAT_VERSION = "1.0"

# (kind, format version) -> schema file; released versions are frozen, a change adds a file.
SCHEMAS: dict[tuple[str, str], str] = {
    ("bundle", "1.0"): "bundle-1.0.schema.json",
    ("return", "1.0"): "return-1.0.schema.json",
    ("create-request", "1.0"): "create-request-1.0.schema.json",
}
_CURRENT = {"bundle": BUNDLE_FORMAT_VERSION, "return": RETURN_FORMAT_VERSION, "create-request": "1.0"}
# Real manifests nest about 6 levels (free-form values a few more); far deeper is an attack on recursion.
MAX_DEPTH = 64


@cache
def load_schema(kind: str, version: str | None = None) -> dict[str, Any]:
    """The JSON Schema of a manifest kind ("bundle" or "return") at a format version."""
    name = SCHEMAS.get((kind, version or _CURRENT[kind]))
    if name is None:
        raise InvalidBundle(f"unsupported {kind} format version {version!r}")
    return json.loads(resources.files("nbpack.schemas").joinpath(name).read_text("utf-8"))


@cache
def _validator(kind: str, version: str) -> jsonschema.protocols.Validator:
    schema = load_schema(kind, version)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def iter_errors(doc: Any, kind: str) -> list[str]:
    """Every schema violation of ``doc`` as a readable line (``path: message``), empty when valid."""
    # The validator, hashing and error messages all recurse: refuse deep nesting before any of them run.
    if _depth_over(doc, MAX_DEPTH):
        return [f"(root): is nested more than {MAX_DEPTH} levels deep"]
    try:
        # Hashing and storing a manifest encodes it as UTF-8: lone surrogates (legal in JSON escapes) cannot be.
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ["(root): holds text that is not valid Unicode (a lone surrogate escape)"]
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or (kind, version) not in SCHEMAS:
        return [f"format_version: unsupported {kind} format version {version!r}"[:300]]
    errors = sorted(_validator(kind, version).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def _depth_over(doc: Any, limit: int) -> bool:
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def validate(doc: Any, kind: str) -> None:
    """Raise ``InvalidBundle`` naming the first problem if ``doc`` is not a valid manifest of ``kind``."""
    errors = iter_errors(doc, kind)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidBundle(f"{kind} manifest is invalid: {errors[0][:300]}{more}")
