"""Check HTTP responses against ``schemas/openapi.yaml``: operation by method + path template, schema by status."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["load_spec", "find_operation", "check_response", "OpenApiMismatch"]

BASE = "https://nbpack.dev/schemas/openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Path parameters that may span several segments (OpenAPI has no syntax for it).
_MULTI_SEGMENT = {"path", "rest"}


class OpenApiMismatch(AssertionError):
    """A response the OpenAPI document does not describe."""


@dataclass(frozen=True)
class Spec:
    """The loaded document and a registry resolving its refs and the JSON schemas it names."""

    doc: dict[str, Any]
    registry: Registry
    templates: tuple[tuple[re.Pattern[str], str, int], ...]


def _absolute_refs(node: Any) -> Any:
    # Fragments are validated on their own, so every $ref is made absolute against the document's base.
    if isinstance(node, dict):
        return {
            k: (urljoin(BASE, v) if k == "$ref" and isinstance(v, str) else _absolute_refs(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


def _template_regex(template: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in re.finditer(r"\{([^}]+)\}", template):
        out += re.escape(template[pos : m.start()])
        out += f"(?P<{m.group(1)}>{'.+' if m.group(1) in _MULTI_SEGMENT else '[^/]+'})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]))


@functools.cache
def load_spec() -> Spec:
    """The OpenAPI document as shipped in the ``nbpack.schemas`` package, ready to validate with."""
    files = importlib.resources.files("nbpack.schemas")
    doc = _absolute_refs(yaml.safe_load(files.joinpath("openapi.yaml").read_text()))
    resources = [(BASE, Resource.from_contents(doc, default_specification=DRAFT202012))]
    for entry in files.iterdir():
        if entry.name.endswith(".schema.json"):
            schema = json.loads(entry.read_text())
            resource = Resource.from_contents(schema, default_specification=DRAFT202012)
            resources.append((schema.get("$id") or f"https://nbpack.dev/schemas/{entry.name}", resource))
    registry = Registry().with_resources(resources)
    # Literal templates before ones with parameters, so /a/b wins over /a/{x}.
    templates = sorted(((_template_regex(t), t, t.count("{")) for t in doc["paths"]), key=lambda x: x[2])
    return Spec(doc, registry, tuple(templates))


def find_operation(method: str, path: str, spec: Spec | None = None) -> tuple[str, dict[str, Any]]:
    """(path template, operation object) for a concrete request, else OpenApiMismatch."""
    spec = spec or load_spec()
    for regex, template, _ in spec.templates:
        if regex.fullmatch(path):
            op = spec.doc["paths"][template].get(method.lower())
            if op is None:
                raise OpenApiMismatch(f"{method} {path}: {template} has no {method.upper()} operation")
            return template, op
    raise OpenApiMismatch(f"{method} {path}: no path template matches")


def _resolve(obj: dict[str, Any], spec: Spec) -> dict[str, Any]:
    # responses are themselves $refs into #/components/responses
    while "$ref" in obj:
        obj = spec.registry.resolver().lookup(obj["$ref"]).contents
    return obj


def _pick_response(op: dict[str, Any], status: int, where: str) -> dict[str, Any]:
    responses = op.get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return responses[key]
    raise OpenApiMismatch(f"{where}: status {status} is not documented (documented: {', '.join(responses)})")


def _media_match(actual: str, documented: list[str]) -> str | None:
    for media in documented:
        if media == "*/*" or media == actual or (media.endswith("/*") and actual.startswith(media[:-1])):
            return media
    return None


def validate_json(instance: Any, schema: dict[str, Any], spec: Spec | None = None) -> None:
    """Validate ``instance`` against a schema taken from the document (refs resolved), else OpenApiMismatch."""
    spec = spec or load_spec()
    # A wrapper with the document's base URI so '#/components/...' and relative file refs resolve.
    validator = Draft202012Validator(_absolute_refs(schema), registry=spec.registry)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise OpenApiMismatch(f"{at}: {first.message[:300]}")


def check(
    method: str, path: str, status: int, content_type: str | None, body: bytes, headers: dict[str, str] | None = None
) -> Any:
    """Check one response against the document; return the parsed JSON body (or None for other types)."""
    spec = load_spec()
    template, op = find_operation(method, path, spec)
    where = f"{method.upper()} {path} ({template}) -> {status}"
    response = _resolve(_pick_response(op, status, where), spec)
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    for name, header in response.get("headers", {}).items():
        if _resolve(header, spec).get("required") and name.lower() not in headers:
            raise OpenApiMismatch(f"{where}: required header {name} is missing")
    content = response.get("content")
    if not content:
        if body:
            raise OpenApiMismatch(f"{where}: documented without a body, got {len(body)} bytes")
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    documented = _media_match(media, list(content))
    if documented is None:
        raise OpenApiMismatch(f"{where}: content type {media!r} is not one of {', '.join(content)}")
    if documented != "application/json":
        return None
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise OpenApiMismatch(f"{where}: body is not JSON ({exc})") from None
    schema = content[documented].get("schema", {})
    try:
        validate_json(doc, schema, spec)
    except OpenApiMismatch as exc:
        raise OpenApiMismatch(f"{where}: {exc}") from None
    return doc


def check_response(resp: Any, method: str | None = None, path: str | None = None) -> Any:
    """Check a Flask test response or a ``requests`` response; return its parsed JSON body (or None)."""
    req = getattr(resp, "request", None)
    if hasattr(resp, "status_code") and hasattr(resp, "get_data"):  # Flask / werkzeug
        method = method or req.method
        path = path or req.path
        body = resp.get_data()
        ctype = resp.headers.get("Content-Type")
    else:  # requests
        method = method or req.method
        path = path or urlsplit(req.url).path
        body = resp.content
        ctype = resp.headers.get("Content-Type")
    return check(method, path, resp.status_code, ctype, body, dict(resp.headers))
