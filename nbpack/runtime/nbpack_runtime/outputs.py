"""What a notebook hands back: files in outputs/, named values (scrapbook's encoding), the error it hit."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .display import in_kernel
from .errors import RuntimeProblem
from .session import STATE, current_bundle
from .vocab import path_problem


def _outputs_dir() -> Path:
    return current_bundle().root / "outputs"


def _safe_rel(name: str) -> Path:
    # The member-path rule, and no ':' either (a drive or an NTFS stream on a Windows hub).
    if path_problem(name) or ":" in name:
        raise RuntimeProblem(f"output name {name!r} must be a relative path inside outputs/ (no '..', ':' or '\\')")
    return Path(name)


def save_output(src: str | os.PathLike | bytes, name: str | None = None) -> Path:
    """Copy a file (or write bytes) into ``outputs/`` next to the notebook; returns the saved path."""
    if isinstance(src, (bytes, bytearray)):
        if not name:
            raise RuntimeProblem("save_output(bytes) needs a name, e.g. save_output(data, 'result.bin')")
        target = _outputs_dir() / _safe_rel(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(src))
        return target
    source = Path(src)
    if not source.is_file():
        raise RuntimeProblem(f"save_output: {source} is not a file")
    target = _outputs_dir() / _safe_rel(name or source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return target


# scrapbook 0.5 knows payload version 1 only: it warns on any later one and skips validating it.
SCRAP_VERSION = 1
# Values travel inside nbpack-return.json, which readers cap at 16 MiB: bigger results belong in outputs/.
MAX_VALUE_BYTES = 2 << 20
MAX_VALUES_BYTES = 8 << 20


def _parquet_b64(value: Any) -> str:
    """A DataFrame (through its own ``to_parquet``, as scrapbook's pandas encoder) or Arrow table as base64 Parquet."""
    import base64
    import io

    buf = io.BytesIO()
    if isinstance(value, sys.modules["pyarrow"].Table):
        import pyarrow.parquet as pq

        pq.write_table(value, buf)
    else:
        value.to_parquet(buf, engine="pyarrow")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _is_instance(value: Any, module: str, name: str) -> bool:
    # Only a module already imported can have made the value: nothing is imported to find out.
    mod = sys.modules.get(module)
    return mod is not None and isinstance(value, getattr(mod, name, ()))


def _encode_value(value: Any) -> tuple[str, Any]:
    # scrapbook's glue() choices, so read_notebook().scraps gives each value back with its type: text for strings,
    # pandas (base64 Parquet) for a DataFrame, json when JSON-able. An Arrow table (what bundle.catalog() gives)
    # is stored as Parquet too and comes back from scrapbook as a DataFrame; what scrapbook cannot take is kept as
    # its repr text.
    if isinstance(value, str):
        return "text", value
    if _is_instance(value, "pandas", "DataFrame") or _is_instance(value, "pyarrow", "Table"):
        try:
            return "pandas", _parquet_b64(value)
        except Exception as err:  # e.g. a column mixing ints and text, which Parquet refuses
            raise RuntimeProblem(f"this table cannot be saved as Parquet ({type(err).__name__}: {err})") from None
    if _is_instance(value, "numpy", "ndarray"):
        value = value.tolist()
    elif hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            value = value.item()  # numpy scalars
        except Exception:
            pass
    try:
        json.dumps(value, allow_nan=False)
        return "json", value
    except (TypeError, ValueError):
        return "text", repr(value)


def save_value(name: str, value: Any) -> None:
    """Record a named value for the return bundle and glue it into the notebook as scrapbook's ``glue`` does.

    ``scrapbook.read_notebook(path).scraps[name].data`` then gives it back: str, JSON types, a DataFrame (also for
    a pyarrow Table). ``None`` is kept in the return manifest but not glued: scrapbook's payload schema has no null.
    """
    if not isinstance(name, str) or not name:
        raise RuntimeProblem(f"save_value needs a non-empty string name, not {name!r}")
    try:
        encoder, data = _encode_value(value)
    except RuntimeProblem as err:
        raise RuntimeProblem(f"save_value({name!r}): {err}") from None
    size = len(json.dumps(data))
    others = sum(len(json.dumps(v["data"])) for k, v in STATE.values.items() if k != name)
    if size > MAX_VALUE_BYTES or others + size > MAX_VALUES_BYTES:
        raise RuntimeProblem(
            f"save_value({name!r}): {size} bytes encoded is too big for a value (limits: "
            f"{MAX_VALUE_BYTES} each, {MAX_VALUES_BYTES} in all); write it to a file and keep it "
            "with nbpack_runtime.save_output(path)"
        )
    current_bundle()
    STATE.values[name] = {"name": name, "encoder": encoder, "data": data}
    if in_kernel() and data is not None:
        from IPython.display import display

        payload = {"name": name, "data": data, "encoder": encoder, "version": SCRAP_VERSION}
        display(
            {f"application/scrapbook.scrap.{encoder}+json": payload},
            metadata={"scrapbook": {"name": name, "data": True, "display": False}},
            raw=True,
        )


def record_error(exc: BaseException | str) -> None:
    """Mark the run as failed; finish() then writes a return with status 'failed' and this error."""
    STATE.error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
