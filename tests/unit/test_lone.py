"""nbpack/bundle/lone.py: the runtime pin and the notebook served alone (files prefix written into the bootstrap
cell and ``metadata.nbpack``)."""

from __future__ import annotations

import hashlib
import json

from nbpack.bundle.lone import RUNTIME_PREFIX, remote_document, runtime_pin, runtime_pin_of_files, served_notebook
from nbpack.bundle.notebook import BOOTSTRAP_TAG, FILES_LINE

MANIFEST = {
    "id": "b-0123456789abcdef01234567",
    "catalogs": [{"path": "catalogs/z.parquet"}, {"path": "catalogs/a.parquet"}],
}
# A prefix with characters a Python string literal must escape, and a non-ASCII one.
PREFIX = 'https://nb.example/files/b-1/tok"en\\é/'


def test_the_pin_covers_only_runtime_files_in_any_order() -> None:
    files = [(RUNTIME_PREFIX + "base.py", b"x = 1\n"), (RUNTIME_PREFIX + "vocab.py", b"A = 'a'\n")]
    pin = runtime_pin_of_files(files)
    assert pin == runtime_pin_of_files(list(reversed(files)))
    assert pin == runtime_pin_of_files([*files, ("catalogs/t.parquet", b"PAR1")])
    assert pin != runtime_pin_of_files([files[0], (files[1][0], b"A = 'b'\n")])
    assert pin != runtime_pin_of_files([(RUNTIME_PREFIX + "other.py", files[0][1]), files[1]])
    lines = "".join(f"{p}\0{hashlib.sha256(d).hexdigest()}\n" for p, d in sorted(files))
    assert pin == hashlib.sha256(lines.encode()).hexdigest()  # the bootstrap cell recomputes exactly this


def test_the_pin_of_no_runtime_is_the_empty_hash() -> None:
    assert runtime_pin([("README.md", "ab" * 32)]) == hashlib.sha256(b"").hexdigest()


def test_remote_document_lists_every_catalog_sorted() -> None:
    assert remote_document(MANIFEST, PREFIX) == {
        "files": PREFIX,
        "lazy": ["catalogs/a.parquet", "catalogs/z.parquet"],
    }
    assert remote_document({"id": "b"}, PREFIX)["lazy"] == []


def _notebook(bootstrap_source: object, nbpack_meta: object = None) -> bytes:
    cells = [
        {"cell_type": "code", "metadata": {"tags": [BOOTSTRAP_TAG]}, "source": bootstrap_source, "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": FILES_LINE, "outputs": []},
    ]
    meta = {} if nbpack_meta is None else {"nbpack": nbpack_meta}
    return json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}).encode()


def test_the_bootstrap_cell_gets_the_prefix_as_a_python_literal_once() -> None:
    source = ["import os\n", FILES_LINE + "\n", "# " + FILES_LINE + "\n"]
    served = json.loads(served_notebook(_notebook(source, {"kept": 1}), MANIFEST, PREFIX))
    cell, other = served["cells"]
    text = cell["source"]
    assert text.count(FILES_LINE) == 1  # the first occurrence only
    line = text.splitlines()[1]
    namespace: dict = {}
    exec(line, namespace)  # noqa: S102 - the line is what the kernel runs; its literal must give the prefix back
    assert namespace["NBPACK_FILES"] == PREFIX
    assert other["source"] == FILES_LINE  # only tagged bootstrap cells are touched
    assert served["metadata"]["nbpack"] == {
        "kept": 1,
        "remote": remote_document(MANIFEST, PREFIX),
        "bundle_id": MANIFEST["id"],
    }


def test_an_old_notebook_without_the_line_keeps_metadata_only_and_odd_metadata_is_replaced() -> None:
    served_bytes = served_notebook(_notebook("print('old')", nbpack_meta="not a dict"), MANIFEST, PREFIX)
    served = json.loads(served_bytes)
    assert served["cells"][0]["source"] == "print('old')"
    assert served["metadata"]["nbpack"]["bundle_id"] == MANIFEST["id"]
    # nbformat's own layout: indent 1, sorted keys, UTF-8 unescaped, trailing newline.
    assert served_bytes.endswith(b"}\n") and b'\n "cells": [' in served_bytes and "é".encode() in served_bytes
