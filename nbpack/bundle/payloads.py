"""Payload catalog: ESAP Workflow entries and library sets, read from TOML or JSON and checked field by field.

Resolving a git payload to a commit and its files is ``nbpack.bundle.payload_git``; an unknown payload name is
``NotFound`` (404), a malformed entry ``InvalidInput``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbpack.errors import InvalidInput, NotFound
from nbpack.netguard import AddressPolicy, Refused
from nbpack.runtime.nbpack_runtime.vocab import path_problem

__all__ = [
    "Payload",
    "PayloadCatalog",
    "check_filepath",
    "check_ref",
    "check_url",
    "fetch_args",
    "payload_error",
    "load_catalog",
    "workflow_payload",
]

ALLOWED_SCHEMES = ("https://", "http://", "git://", "file://")
_WORKFLOW_FIELDS = (
    "name",
    "description",
    "url",
    "ref",
    "filepath",
    "workflowtype",
    "keywords",
    "author",
    "runtimePlatform",
)
_OWN_FIELDS = ("requirements", "conda", "hub")
# ESAP's serializer adds a primary key and to_json() adds kind; neither is an input.
_IGNORED_FIELDS = ("id", "pk", "kind")
log = logging.getLogger("nbpack.bundle.payloads")
# A workflow a request names by URL or gives inline: fetched over the web only, never from the service's own disk.
_WEB_SCHEMES = ("https://", "http://")
# ESAP workflow types that are no notebook to open (TOPCAT and the like are installed on a desktop).
_NOT_NOTEBOOK_TYPES = ("desktop",)


@dataclass(frozen=True)
class Payload:
    """One catalog entry: an ESAP Workflow (git notebook) or, without ``url``, a library set."""

    name: str
    description: str = ""
    url: str = ""
    ref: str = "HEAD"
    filepath: str = ""
    workflowtype: str = ""
    keywords: list[str] = field(default_factory=list)
    author: str = ""
    runtimePlatform: str = ""  # noqa: N815 - ESAP's field name
    requirements: list[str] = field(default_factory=list)
    conda: list[str] = field(default_factory=list)
    hub: dict[str, Any] = field(default_factory=dict)

    @property
    def is_library_set(self) -> bool:
        """True when the payload names libraries only (no git repository)."""
        return not self.url

    def to_json(self) -> dict[str, Any]:
        """The JSON form the service API returns."""
        doc = asdict(self)
        doc["kind"] = "libraries" if self.is_library_set else "git"
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, esap: bool = False) -> Payload:
        """Build a payload from a catalog entry (TOML table or ESAP workflow JSON), checking every field.

        ``esap``: the entry is ESAP's own (``ida/workflows/search``): fields ESAP adds beyond its model are
        ignored, and a repository without ``filepath`` is kept (its notebook is found when it resolves).
        """
        if not isinstance(doc, dict):
            raise InvalidInput(f"payload entry must be an object, got {type(doc).__name__}")
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("payload entry without a name")
        if esap:
            doc = {k: v for k, v in doc.items() if k in _WORKFLOW_FIELDS}
        unknown = set(doc) - set(_WORKFLOW_FIELDS) - set(_OWN_FIELDS) - set(_IGNORED_FIELDS)
        if unknown:
            raise InvalidInput(f"payload '{name}': unknown field(s) {', '.join(sorted(unknown))}")
        text = {}
        for key in ("description", "url", "ref", "filepath", "workflowtype", "author", "runtimePlatform"):
            value = doc.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"payload '{name}': field '{key}' must be a string")
            text[key] = (value or "").strip()
        if text["ref"]:
            check_ref(name, text["ref"])
        if text["url"]:
            check_url(text["url"])
            if not text["filepath"] and not esap:
                raise InvalidInput(f"payload '{name}': a git payload needs a filepath (the notebook)")
            if text["filepath"]:
                check_filepath(name, text["filepath"])
        return cls(
            name=name.strip(),
            keywords=_string_list(name, "keywords", doc.get("keywords"), split_commas=True),
            requirements=_string_list(name, "requirements", doc.get("requirements")),
            conda=_string_list(name, "conda", doc.get("conda")),
            hub=_hub(name, doc.get("hub")),
            **{**text, "ref": text["ref"] or "HEAD"},
        )


class PayloadCatalog:
    """Payloads by name, searchable like ESAP's workflow search."""

    def __init__(self, payloads: list[Payload], *, keep_first: bool = False) -> None:
        self._by_name: dict[str, Payload] = {}
        for payload in payloads:
            if payload.name in self._by_name:
                if not keep_first:
                    raise InvalidInput(f"duplicate payload name '{payload.name}'")
                log.warning("payload catalog: left out a second workflow named %r (the first is kept)", payload.name)
                continue
            self._by_name[payload.name] = payload

    def get(self, name: str) -> Payload:
        """The payload called ``name``, else the first whose repository URL is ``name`` (ESAP's Deploy link names
        a workflow by URL), else a repository named by an http(s) URL (an OSSR workflow ESAP does not list);
        NotFound otherwise."""
        if name in self._by_name:
            return self._by_name[name]
        for payload in self._by_name.values():
            if payload.url and payload.url.rstrip("/") == name.rstrip("/"):
                return payload
        if name.startswith(_WEB_SCHEMES):
            return workflow_payload({"url": name})
        raise NotFound(f"unknown payload '{name}'", code="payload_not_found")

    def all(self) -> list[Payload]:
        """Every payload, sorted by name."""
        return [self._by_name[n] for n in sorted(self._by_name)]

    def search(self, keyword: str | None = None, text: str | None = None) -> list[Payload]:
        """Payloads having ``keyword`` (case-insensitive) and containing ``text`` in name or description."""
        found = self.all()
        if keyword:
            wanted = keyword.strip().lower()
            found = [p for p in found if any(k.lower() == wanted for k in p.keywords)]
        if text:
            needle = text.strip().lower()
            found = [p for p in found if needle in p.name.lower() or needle in p.description.lower()]
        return found

    def __len__(self) -> int:
        return len(self._by_name)


def load_catalog(path: Path) -> PayloadCatalog:
    """Read a payload catalog: TOML (``[[payload]]`` tables) or JSON (a list, ESAP's DRF page, or ``payloads``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read payload catalog {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".toml":
        try:
            doc: Any = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"payload catalog {path.name} is not valid TOML: {exc}") from None
    else:
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"payload catalog {path.name} is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        return PayloadCatalog(_esap_workflows(path.name, doc["results"]), keep_first=True)
    return PayloadCatalog([Payload.from_dict(entry) for entry in _entries(path.name, doc)])


def _esap_workflows(source: str, entries: list[Any]) -> list[Payload]:
    """ESAP's ``ida/workflows/search`` answer as it is: every entry nbpack can open, one logged reason per other."""
    kept = []
    for i, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, dict) else None
        label = repr(label) if isinstance(label, str) else f"#{i + 1}"
        kind = str(entry.get("workflowtype") or "").strip().lower() if isinstance(entry, dict) else ""
        try:
            if kind in _NOT_NOTEBOOK_TYPES:
                raise InvalidInput(f"a {kind} workflow, not a notebook")
            kept.append(Payload.from_dict(entry, esap=True))
        except InvalidInput as why:
            log.warning("payload catalog %s: left out workflow %s: %s", source, label, why.message)
    return kept


def workflow_payload(fields: dict[str, Any]) -> Payload:
    """A payload from ESAP Workflow fields a request carries (``url``, ``ref``, ``filepath``, ``name``?).

    Fetched over http(s) only: a request never makes the service read a repository from its own disk.
    """
    if not isinstance(fields, dict) or not isinstance(fields.get("url"), str) or not fields["url"].strip():
        raise InvalidInput("a workflow needs its repository 'url'")
    url = fields["url"].strip()
    if not url.startswith(_WEB_SCHEMES):
        raise InvalidInput(f"workflow repository URL {url[:200]!r} must be https:// or http://")
    name = fields.get("name") if isinstance(fields.get("name"), str) and fields["name"].strip() else url
    return Payload.from_dict({**fields, "name": name, "url": url}, esap=True)


def _entries(source: str, doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("payload", "payloads", "results", "workflows"):
            if isinstance(doc.get(key), list):
                return doc[key]
    raise InvalidInput(f"payload catalog {source} has no list of payloads (payload, payloads or results)")


def _string_list(name: str, key: str, value: Any, *, split_commas: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) and split_commas:
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"payload '{name}': field '{key}' must be a list of strings")
    return [v.strip() for v in value if v.strip()]


def _hub(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"payload '{name}': field 'hub' must be a table")
    unknown = set(value) - {"packages", "gpu", "memory_gb"}
    if unknown:
        raise InvalidInput(f"payload '{name}': unknown hub field(s) {', '.join(sorted(unknown))}")
    hub: dict[str, Any] = {}
    if "packages" in value:
        hub["packages"] = _string_list(name, "hub.packages", value["packages"])
    if "gpu" in value:
        if not isinstance(value["gpu"], bool):
            raise InvalidInput(f"payload '{name}': hub.gpu must be true or false")
        hub["gpu"] = value["gpu"]
    if "memory_gb" in value:
        mem = value["memory_gb"]
        if isinstance(mem, bool) or not isinstance(mem, int | float) or mem < 0:
            raise InvalidInput(f"payload '{name}': hub.memory_gb must be a non-negative number")
        hub["memory_gb"] = float(mem)
    return hub


def payload_error(code: str, message: str) -> InvalidInput:
    """422: the request was well formed but names a payload that cannot be used (``code`` says why)."""
    err = InvalidInput(message, code=code)
    err.http_status = 422
    return err


_GIT_PORTS = {"https": 443, "http": 80, "git": 9418}


def fetch_args(payload: Payload, policy: AddressPolicy) -> tuple[str, ...]:
    """The ``git -c`` flags a fetch of ``payload`` runs with, once its host passed ``policy`` (422 otherwise).

    The host's addresses are checked here (``nbpack.netguard``: public only, unless the operator lists the host
    or its network in ``NBPACK_PAYLOAD_ALLOW``) and pinned for http(s) with ``http.curloptResolve``, so git's own
    lookup cannot answer another address (DNS rebinding); redirects are not followed, since git would not check
    where they lead. ``file://`` (an operator's catalog only) opens no connection.
    """
    parts = urlsplit(payload.url)
    if parts.scheme == "file":
        return ()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port or _GIT_PORTS.get(parts.scheme, 0)
        addresses = policy.check(host, port)
    except (Refused, ValueError) as why:
        reason = why.reason if isinstance(why, Refused) else "its port is not a number"
        raise payload_error(
            "payload_address",
            f"payload '{payload.name}': {payload.url} is not fetched: {reason}; payloads come only from public"
            " addresses unless the operator lists the host in NBPACK_PAYLOAD_ALLOW",
        ) from None
    flags: tuple[str, ...] = ("-c", "http.followRedirects=false")
    if parts.scheme in ("http", "https") and not _ip_literal(host):  # an address literal involves no lookup
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        flags += ("-c", f"http.curloptResolve={host}:{port}:{pinned}")
    return flags


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_url(url: str) -> None:
    if not url.startswith(ALLOWED_SCHEMES) or any(c in url for c in "\n\r\0 "):
        raise InvalidInput(f"payload repository URL {url!r} is not allowed (use https://, http://, git:// or file://)")


_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def check_ref(name: str, ref: str) -> None:
    """A branch, tag or commit name as git's check-ref-format allows it, and never one git would read as an option."""
    if (
        ref.startswith(("-", "/", "."))
        or ref.endswith(("/", ".", ".lock"))
        or _BAD_REF.search(ref)
        or "/." in ref
        or ref == "@"
        or len(ref) > 255
    ):
        raise InvalidInput(f"payload '{name}': ref {ref[:80]!r} is not a valid branch, tag or commit name")


def check_filepath(name: str, filepath: str) -> None:
    # The member-path rule: a path names one file as written, so ``a/../b`` is refused rather than normalised.
    if path_problem(filepath):
        raise InvalidInput(f"payload '{name}': filepath {filepath!r} must be a relative path inside the repository")
