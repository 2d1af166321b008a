"""The README's "From ESAP" example, end to end: the service started as step 1 says (gunicorn, ESAP's facility list
with the README's overlay, the payload catalog, a webhook secret), step 2's Python run as written against it (only the
URL changed), the landing link it prints opened, and step 3's quoted ranking reasons checked against the service."""

from __future__ import annotations

import contextlib
import io
import re
import urllib.request
from pathlib import Path

from tests.fixtures.service import REPO, service_env

README = (REPO / "README.md").read_text("utf-8")
SECTION = README[README.index("## From ESAP") :]
# Step 3 of the README quotes these for the basket of step 2, on the hub it says comes first.
FIRST_HUB = "SURF/ASTRON JupyterHub"
QUOTED_REASONS = [
    "holds about 50% of the referenced data at SARA-DCACHE (1 file(s) without a size counted at the mean size)",
    "has astropy 6.0.1",
    "lacks matplotlib>=3.8",
]


def test_readme_from_esap_example_end_to_end(tmp_path: Path, start_service) -> None:  # noqa: ANN001
    overlay = re.search(r"cat > facilities-overlay.toml <<'TOML'\n(.*?)\nTOML\n", SECTION, re.S)
    code = re.search(r"```python\n(.*?)```", SECTION, re.S)
    assert overlay and code, "the README's From ESAP steps changed shape"
    (tmp_path / "facilities-overlay.toml").write_text(overlay.group(1) + "\n")
    env = service_env(
        str(tmp_path / "store"),
        "key-that-esap-holds",
        webhook_secret="secret-shared-with-esap",
        esap_facilities_file=str(REPO / "examples" / "esap_facilities.json"),
        hubs_file=str(tmp_path / "facilities-overlay.toml"),
        payloads_file=str(REPO / "examples" / "payloads.toml"),
        cache_dir=str(tmp_path / "cache"),
    )
    svc = start_service(env)

    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code.group(1).replace("https://nbpack.example.org", svc.url), namespace)  # noqa: S102 - the README's code
    created, client = namespace["created"], namespace["nbpack"]
    landing = printed.getvalue().strip()
    assert landing == created["links"]["landing"] and landing.startswith(f"{svc.url}/b/{created['id']}?t=")

    # The link the user is shown opens: both basket items listed, the apertif image (no size) as size unknown.
    with urllib.request.urlopen(landing, timeout=60) as resp:
        assert resp.status == 200
        page = resp.read().decode()
    assert "My LOFAR selection" in page
    assert "LOFAR_ASTRON_GRANGE:L123_SB000.MS.tar" in page and "1.0 MiB" in page
    assert "https://webdav.grid.surfsara.nl:2880/pnfs/apertif/image_mf_02.fits" in page and "size unknown" in page

    manifest = client.get(created["id"])
    assert [f["name"] for f in manifest["files"]] == ["L123_SB000.MS.tar", "image_mf_02.fits"]
    assert "size" not in manifest["files"][1] and not manifest.get("skipped")
    assert "lotss" in [c["name"] for c in manifest["catalogs"]]

    # Step 3: what the README says the ranking answers for this basket is what it answers.
    ranking = client.hubs(created["id"])
    first = ranking[0]
    assert first["hub"]["name"] == FIRST_HUB and first["can_run"] and first["local_share"] == 0.5
    flat = " ".join(SECTION.split())
    for reason in QUOTED_REASONS:
        assert f'"{reason}"' in flat, f"the README no longer quotes {reason!r}"
        assert reason in first["reasons"], (reason, first["reasons"])
    assert set(created["links"]["launch"]) == {h["hub"]["name"] for h in ranking}
