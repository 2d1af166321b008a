"""`nbpack run --upload` and `nbpack demo` as a user runs them (a subprocess): a failed upload or a failed notebook
is a non-zero exit with one `nbpack: error:` line naming a return bundle that is really there."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, with_returns
from nbpack.bundle.returns import check_return, open_return
from nbpack.client import Client
from tests.fixtures.hub import free_port
from tests.fixtures.service import service_env
from tests.helpers import reference_table, template_notebook

CLI = [sys.executable, "-c", "from nbpack.cli.commands import main; main()"]
KEPT = re.compile(r"(?:the return bundle is kept at|return bundle with status failed written to) (\S+)$")


def _nbpack(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Few, quick retries: the failing uploads below must fail, not wait out the default back-off.
    full = {**os.environ, "NBPACK_UPLOAD_ATTEMPTS": "2", "NBPACK_RETRY_DELAY": "0.05", **(env or {})}
    return subprocess.run([*CLI, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbpack: error: "), proc.stderr
    return lines[0]


def _kept_return(line: str, expected: Path) -> dict:
    """The return bundle the error line names: it exists, is the -o path and is a valid return bundle."""
    m = KEPT.search(line)
    assert m, line
    kept = Path(m.group(1))
    assert kept.resolve() == expected.resolve() and kept.is_file(), line
    assert not list(expected.parent.glob("*.part")), "a .part file was left behind"
    with open_return(kept) as rf:
        assert check_return(rf) == []
        return rf.manifest


def _bundle(tmp_path: Path) -> Path:
    out = tmp_path / "b.zip"
    build_bundle(
        BuildSpec(
            title="Upload me",
            catalogs=[CatalogInput("sources", reference_table())],
            notebook=template_notebook("nbpack_runtime.save_value('answer', 42)"),
            notebook_name="up.ipynb",
        ),
        out,
    )
    return out


def test_upload_to_a_closed_port_exits_nonzero_and_keeps_the_zip(tmp_path: Path) -> None:
    built = _bundle(tmp_path)
    with zipfile.ZipFile(built) as zf:
        bid = json.loads(zf.read("nbpack.json"))["id"]
    port = free_port()  # nothing listens there
    bundle = tmp_path / "with-returns.zip"
    with_returns(
        built, bundle, {"endpoint": f"http://127.0.0.1:{port}/api/v1/bundles/{bid}/returns", "token": "some-token"}
    )
    out = tmp_path / "results" / "ret.zip"
    proc = _nbpack("run", str(bundle), "-o", str(out), "--upload", cwd=tmp_path)
    line = _one_error_line(proc)
    assert "upload failed" in line and f"127.0.0.1:{port}" in line, line
    manifest = _kept_return(line, out)
    assert manifest["status"] == "completed" and manifest["bundle_id"] == bid
    assert {v["name"]: v["data"] for v in manifest["values"]} == {"answer": 42}


def test_upload_refused_by_the_service_exits_nonzero_then_the_good_token_uploads(tmp_path: Path, start_service) -> None:  # noqa: ANN001
    key = secrets.token_urlsafe(16)
    svc = start_service(service_env(str(tmp_path / "store"), key, cache_dir=str(tmp_path / "cache")))
    client = Client(svc.url, key, timeout=60)
    created = client.create({"title": "Refused", "catalogs": [{"name": "t", "rows": [{"a": 1}, {"a": 2}]}]})
    bid = created["id"]
    good = client.download(bid, tmp_path / "good.zip")
    with zipfile.ZipFile(good) as zf:
        returns = json.loads(zf.read("nbpack.json"))["returns"]
    bad = tmp_path / "bad.zip"
    with_returns(good, bad, {**returns, "token": returns["token"][:-4] + "AAAA"})

    out = tmp_path / "refused.zip"
    line = _one_error_line(_nbpack("run", str(bad), "-o", str(out), "--upload", cwd=tmp_path))
    assert re.search(r"upload failed: .*HTTP 40[13]", line), line
    _kept_return(line, out)
    assert client.returns(bid) == []

    # The control: the same command with the bundle's own token uploads and says so.
    ok = _nbpack("run", str(good), "-o", str(tmp_path / "ok.zip"), "--upload", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    [listed] = client.returns(bid)
    assert f"uploaded as {listed['id']}" in ok.stdout
    assert (tmp_path / "ok.zip").is_file()


def test_demo_exits_nonzero_when_its_notebook_fails(tmp_path: Path) -> None:
    # The python3 kernel lacks pyarrow.csv (the demo's fourth cell imports it): a kernelspec on JUPYTER_PATH (searched
    # before the venv's own) whose environment hides that module from the kernel only.
    data, hide = tmp_path / "jupyter-data", tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['pyarrow.csv'] = None\n")
    spec = data / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (no pyarrow.csv)",
                "language": "python",
                "env": {"PYTHONPATH": str(hide)},
            }
        )
    )
    proc = _nbpack("demo", "--dir", "d", cwd=tmp_path, env={"JUPYTER_PATH": str(data)})
    line = _one_error_line(proc)
    assert "notebook failed (ModuleNotFoundError" in line and "pyarrow.csv" in line, line
    manifest = _kept_return(line, tmp_path / "d" / "demo-return.zip")
    assert manifest["status"] == "failed" and "pyarrow.csv" in manifest["error"]
