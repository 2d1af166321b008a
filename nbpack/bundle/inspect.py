"""Human-readable summaries of bundles and return bundles (``nbpack inspect``)."""

from __future__ import annotations

from typing import Any

from nbpack.bundle.notebook import read_notebook

__all__ = ["describe", "human_size"]


def human_size(n: int | None) -> str:
    """Bytes as a short human string."""
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _bundle_lines(bf: Any) -> list[str]:
    m = bf.manifest
    lines = [f"bundle {m['id']}: {m['title']}", f"  created {m['created']}"]
    if m.get("origin"):
        lines.append("  origin: " + ", ".join(f"{k}={v}" for k, v in sorted(m["origin"].items())))
    lines.append(f"  catalogs ({len(m['catalogs'])}):")
    for cat in m["catalogs"]:
        cols = ", ".join(col["name"] + (f" [{col['unit']}]" if col.get("unit") else "") for col in cat["columns"])
        lines.append(
            f"    {cat['name']}: {cat['rows']} rows, {len(cat['columns'])} columns ({cols}), {human_size(cat['bytes'])}"
        )
    lines.append(f"  files ({len(m['files'])}):")
    for f in m["files"]:
        extra = [human_size(f.get("size"))]
        if f.get("site"):
            extra.append(f"at {f['site']}")
        if f.get("checksums"):
            extra.append("checksums " + ",".join(sorted(f["checksums"])))
        lines.append(f"    {f['name']}: {f['uri']} ({'; '.join(extra)})")
    p = m["payload"]
    lines.append(f"  payload: notebook {p['notebook']}" + (" (generated starter)" if p.get("generated") else ""))
    if p.get("name"):
        lines.append(
            f"    from payload {p['name']}" + (f" at {p['source'].get('commit', '')[:12]}" if p.get("source") else "")
        )
    lines.append("    requires: " + (", ".join(p["requirements"]) or "nothing beyond pyarrow"))
    if p.get("conda"):
        lines.append("    conda: " + ", ".join(p["conda"]))
    nb = read_notebook(bf.read(p["notebook"]))
    tags = {m["cells"]["bootstrap"]: "bootstrap", m["cells"]["results"]: "results"}
    added = [
        f"{tags[t]} (cell {i + 1} of {len(nb.cells)})"
        for i, c in enumerate(nb.cells)
        for t in c.get("metadata", {}).get("tags", [])
        if t in tags
    ]
    lines.append("  cells added: " + ", ".join(added))
    if m.get("returns"):
        lines.append(f"  returns to: {m['returns']['endpoint']} (token until {m['returns'].get('expires', '?')})")
    if m.get("skipped"):
        reasons = "; ".join(s["reason"] for s in m["skipped"][:3])
        lines.append(f"  skipped inputs: {len(m['skipped'])} ({reasons})")
    return lines


def _return_lines(rf: Any) -> list[str]:
    m = rf.manifest
    lines = [
        f"return {m['id']} of bundle {m['bundle_id']}: {m['status']}",
        f"  ran {m['started']} → {m['ended']} on {m['provenance'].get('host', '?')}"
        f" (Python {m['provenance'].get('python', '?')}, kernel {m['provenance'].get('kernel', '?')})",
    ]
    if m.get("error"):
        lines.append(f"  error: {m['error']}")
    lines.append(f"  notebook: {m['notebook']}")
    lines.append(f"  outputs ({len(m['outputs'])}):")
    for o in m["outputs"]:
        where = "".join(f" → {loc['uri']}" for loc in o.get("locations", []))
        lines.append(f"    {o['path']} ({human_size(o['bytes'])}){where}")
    lines.append(f"  values ({len(m['values'])}):")
    for v in m["values"]:
        text = repr(v["data"])
        lines.append(f"    {v['name']} = {text[:80]}{'…' if len(text) > 80 else ''}")
    return lines


def describe(kind: str, opened: Any) -> str:
    """The text ``nbpack inspect`` prints for an opened bundle or return bundle."""
    return "\n".join(_bundle_lines(opened) if kind == "bundle" else _return_lines(opened))
