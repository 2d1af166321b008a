"""The CLI paths a newcomer takes first, in-process: every failure is one ``nbpack: error:`` line and a non-zero exit
with nothing half-written; CSV encodings; the starter notebook needs nothing beyond pyarrow; `nbpack open` finds
JupyterLab beside its own interpreter."""

from __future__ import annotations

import json
import socket
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nbpack.cli import main

LATIN1 = "id,name,mag\n1,Alcyone,2.87\n2,Ast\xe9rope,5.76\n3,\xc9lectre,3.7\n"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code not in (0, None)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbpack: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def _csv(tmp_path: Path, text: str = "id,mag\n1,2.5\n", encoding: str = "utf-8") -> Path:
    path = tmp_path / "stars.csv"
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("/proc/x.zip", "/proc"),
        ("{file}/x.zip", "file: not a folder"),
        ("/sys/x.zip", "/sys"),
    ],
)
def test_build_to_a_place_it_cannot_write_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, words: str
) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    target = out.format(file=tmp_path / "file")
    line = _fails(["build", "-o", target, "--catalog", f"stars={_csv(tmp_path)}"], capsys)
    assert words in line, line
    assert (tmp_path / "file").read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "stars.csv"]


def test_pull_to_a_place_it_cannot_write_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # The file is opened before anything is fetched: no server is needed to see the error.
    line = _fails(["pull", "http://127.0.0.1:9/b/h-0?t=x", "-o", "/proc/p.zip"], capsys)
    assert "/proc/.p.zip.part" in line


def test_serve_on_a_busy_port_says_so_before_printing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBPACK_SECRET_KEY", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--port", str(port), "--storage", str(tmp_path / "data"), "--no-lab"])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""  # no demo link, no API key printed for a service that never started
    assert err == f"nbpack: error: port {port} is in use on 127.0.0.1: stop what runs there or pick --port\n"


def test_a_csv_that_is_not_utf8_is_one_line_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = _csv(tmp_path, LATIN1, "latin-1")
    line = _fails(["build", "-o", str(tmp_path / "b.zip"), "--catalog", f"stars={csv}"], capsys)
    assert "stars.csv is not UTF-8 text at line 3 (byte 0xe9)" in line and "--encoding latin-1" in line
    assert not (tmp_path / "b.zip").exists()
    # Past the first block pyarrow types columns from, the bad byte is found and named too.
    long = "id,name\n" + "".join(f"{i},plain\n" for i in range(400_000)) + "400000,caf\xe9\n"
    _csv(tmp_path, long, "latin-1")
    line = _fails(["build", "-o", str(tmp_path / "b.zip"), "--catalog", f"stars={csv}"], capsys)
    assert "at line 400002 (byte 0xe9)" in line, line
    assert _fails(["build", "-o", str(tmp_path / "b.zip"), "--encoding", "klingon", "--catalog", f"s={csv}"], capsys)


def test_encoding_reads_a_latin1_csv_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = _csv(tmp_path, LATIN1, "latin-1")
    main(["build", "-o", str(tmp_path / "b.zip"), "--encoding", "latin-1", "--catalog", f"stars={csv}"])
    assert "; 3 rows in" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        (tmp_path / "s.parquet").write_bytes(zf.read("catalogs/stars.parquet"))
    table = pq.read_table(tmp_path / "s.parquet")
    assert str(table.schema.field("name").type) == "string"
    assert table.column("name").to_pylist() == ["Alcyone", "Astérope", "Électre"]


def test_the_starter_notebook_needs_only_pyarrow_and_folds_its_bootstrap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["build", "-o", str(tmp_path / "mine.zip"), "--catalog", f"stars={_csv(tmp_path)}"])
    with zipfile.ZipFile(tmp_path / "mine.zip") as zf:
        manifest = json.loads(zf.read("nbpack.json"))
        nb = json.loads(zf.read(manifest["payload"]["notebook"]))
        requirements = zf.read("requirements.txt").decode()
    mine = [
        c for c in nb["cells"] if c["cell_type"] == "code" and "nbpack-bootstrap" not in c["metadata"].get("tags", [])
    ]
    code = "\n".join("".join(c["source"]) for c in mine)
    assert "pandas" not in code and "astropy" not in code
    assert manifest["payload"]["requirements"] == [] and "pandas" not in requirements
    capsys.readouterr()
    main(["inspect", str(tmp_path / "mine.zip")])
    assert "requires: nothing beyond pyarrow" in capsys.readouterr().out
    boot = next(c for c in nb["cells"] if "nbpack-bootstrap" in c["metadata"].get("tags", []))
    assert boot["metadata"]["jupyter"] == {"source_hidden": True}


def test_open_finds_jupyterlab_beside_its_interpreter_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbpack.local import jupyter

    monkeypatch.setenv("PATH", "/nonexistent")  # the README runs .venv/bin/nbpack without activating the venv
    found = jupyter.find_app("jupyter-lab")
    assert found == Path(sys.executable).parent / "jupyter-lab"
    assert jupyter.parse_server_url("http://127.0.0.1:8888/lab?token=abc") == jupyter.LocalJupyter(
        "http://127.0.0.1:8888", "abc"
    )
    with pytest.raises(Exception, match="with \\?token="):
        jupyter.parse_server_url("http://127.0.0.1:8888/lab")


def test_the_local_api_key_goes_only_to_a_service_on_this_computer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbpack.cli.remote import _server_and_key

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBPACK_STORAGE", raising=False)
    (tmp_path / "nbpack-data").mkdir()
    (tmp_path / "nbpack-data" / ".nbpack-api-key").write_text("kept-key\n")
    assert _server_and_key(None, None) == ("http://127.0.0.1:8080", "kept-key")
    assert _server_and_key("http://localhost:9000", None) == ("http://localhost:9000", "kept-key")
    assert _server_and_key("https://nbpack.example.org", None) == ("https://nbpack.example.org", None)
    assert _server_and_key("http://127.0.0.1:8080", "given") == ("http://127.0.0.1:8080", "given")


def test_a_disk_that_refuses_more_bytes_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    # The kernel's file-size limit makes every write past 256 KiB fail (EFBIG), as a full disk fails them (ENOSPC):
    # the build stops at whatever write hits it first, in the staging folder or the zip.
    import resource
    import signal
    import subprocess

    rows = "".join(f"{i},{i * 7919 % 10007},star {i}, ok\n" for i in range(60_000))
    (tmp_path / "big.csv").write_text("id,mag,name,note\n" + rows)
    (tmp_path / "out").mkdir()
    (tmp_path / "tmp").mkdir()

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    done = subprocess.run(
        [sys.executable, "-c", "from nbpack.cli import main; main()", "build", "-o", "out/b.zip"]
        + ["--catalog", "big=big.csv"],
        cwd=tmp_path,
        env={**__import__("os").environ, "TMPDIR": str(tmp_path / "tmp")},
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("nbpack: error: "), done.stderr
    assert "File too large" in lines[0], lines[0]
    assert list((tmp_path / "out").iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_progress_shows_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    rows = "".join(f"{i},{i % 97}\n" for i in range(200_000))
    (tmp_path / "stars.csv").write_text("id,mag\n" + rows)
    args = [sys.executable, "-c", "from nbpack.cli import main; main()", "build", "-o", "b.zip", "--catalog"]
    piped = subprocess.run([*args, "s=stars.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr  # a pipe or a log: the result line only
    assert piped.stdout.startswith("b.zip: bundle b-") and "200,000 rows" in piped.stdout

    master, slave = pty.openpty()
    # A terminal 100 columns wide, as a user's (a fresh pty is 0 wide, and tqdm draws nothing there).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([*args, "s=stars.csv"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(300) == 0
    assert b"catalog s" in shown and b"rows" in shown, shown  # tqdm's bar, drawn on the terminal
