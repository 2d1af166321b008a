"""Requirement specifiers checked against installed versions (``packaging`` when present, a fallback otherwise)."""

from __future__ import annotations

import re

from .display import in_kernel


def split_req(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$", spec)
    if not m:
        return spec.strip(), ""
    return m.group(1), m.group(3)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:4])


def _simple_satisfies(version: str, spec: str) -> bool:
    ops = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "~=": lambda a, b: a >= b,
    }
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.match(r"(>=|<=|==|!=|~=|>|<)\s*(\S+)", clause)
        if m and not ops[m.group(1)](_version_tuple(version), _version_tuple(m.group(2).rstrip(".*"))):
            return False
    return True


def satisfies(version: str, spec_text: str) -> bool:
    if not spec_text:
        return True
    try:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(spec_text).contains(version, prereleases=True)
    except ImportError:
        return _simple_satisfies(version, spec_text)
    except Exception:
        return _simple_satisfies(version, spec_text)


def install_hint(missing: list[str]) -> str:
    pip = "%pip" if in_kernel() else "pip"
    return (
        "Missing packages: "
        + ", ".join(missing)
        + "\nInstall with: "
        + pip
        + " install "
        + " ".join(f"'{m}'" for m in missing)
    )
