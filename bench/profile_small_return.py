"""Worker CPU per small return, in-process against a fresh SeaweedFS (issue 23): 40 returns of one handle in a row
timed with ``process_time``, then 40 more under cProfile (top 25 by own time).

``flock /work/tools/bench.lock .venv/bin/python -m bench.profile_small_return`` — the bench's 1 MB ×20 rows are 20
returns of ~50 kB each, where per-request costs (botocore, Flask, checks) dominate; these returns are ~6.6 kB.
"""

from __future__ import annotations

import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.test import TestResponse

from tests.fixtures.seaweed import SeaweedFS
from tests.helpers import APP_API_KEY, make_app
from tests.unit.test_service_reads import _return_zip

ROUNDS = 40


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nbpack-prof-"))
    weed = SeaweedFS(work / "weed")
    weed.start()
    try:
        weed.create_bucket("prof")
        os.environ.update(
            AWS_ACCESS_KEY_ID=weed.access_key, AWS_SECRET_ACCESS_KEY=weed.secret_key, AWS_REGION="us-east-1"
        )
        app = make_app(work / "svc", storage="s3://prof/nbpack", s3_endpoint=weed.endpoint)
        client = app.test_client()
        request = {"title": "P", "catalogs": [{"name": "c", "rows": [{"id": 1}]}]}
        hid = client.post("/api/v1/bundles", json=request, headers={"X-API-Key": APP_API_KEY}).get_json()["id"]
        storage = app.extensions["nbpack"].storage
        stored = json.loads(storage.read_bytes(f"handles/{hid}/manifest.json"))
        notebook = storage.read_bytes(f"handles/{hid}/notebook.ipynb")
        zips = []
        for i in range(2 * ROUNDS + 1):
            nb = json.loads(notebook)
            nb.setdefault("metadata", {})["variant"] = i  # a distinct notebook: a distinct return id
            zips.append(_return_zip(dict(stored), json.dumps(nb).encode()))
        headers = {"Authorization": f"Bearer {stored['returns']['token']}", "Content-Type": "application/zip"}

        def post(body: bytes) -> TestResponse:
            return client.post(f"/api/v1/bundles/{hid}/returns", data=body, headers=headers)

        assert post(zips[0]).status_code == 201  # the handle's first ledger (one listing) is not measured
        logging.disable(logging.INFO)
        cpu, wall = time.process_time(), time.perf_counter()
        for body in zips[1 : ROUNDS + 1]:
            assert post(body).status_code == 201
        cpu, wall = (time.process_time() - cpu) / ROUNDS * 1000, (time.perf_counter() - wall) / ROUNDS * 1000
        print(f"return zip {len(zips[1])} B: CPU {cpu:.1f} ms, wall {wall:.1f} ms per return (load {os.getloadavg()})")
        profile = cProfile.Profile()
        profile.enable()
        for body in zips[ROUNDS + 1 :]:
            assert post(body).status_code == 201
        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    finally:
        weed.stop()


if __name__ == "__main__":
    main()
