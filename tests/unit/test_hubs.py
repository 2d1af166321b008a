"""Hub registry loading (TOML, JSON, ESAP facilities + overlay) and ranking of hubs for a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbpack.errors import InvalidInput
from nbpack.hub.ranking import rank_hubs
from nbpack.hub.registry import Hub, hub_from_dict, load_esap_facilities, load_registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _hub(name: str, **kw) -> Hub:
    return hub_from_dict({"name": name, "url": f"https://{name.lower()}.example.org/"} | kw)


def _manifest(files=(), requirements=(), **needs) -> dict:
    return {
        "files": [dict(f) for f in files],
        "payload": {"notebook": "nb.ipynb", "requirements": list(requirements), "hub": needs},
    }


def _file(name: str, site: str | None, size: int | None = None) -> dict:
    ref = {"name": name, "uri": f"escape:{name}"}
    if site:
        ref["site"] = site
    if size is not None:
        ref["size"] = size
    return ref


# ---------------------------------------------------------------- loading


def test_example_registry_loads():
    hubs = load_registry(EXAMPLES / "hubs.toml")
    assert [h.launch for h in hubs] == ["nbgitpuller", "nbgitpuller", "binderhub"]
    surf = hubs[0]
    assert surf.sites == ["SURF-DCACHE", "LOFAR-LTA"] and surf.memory_gb == 16.0 and surf.gpu is False
    assert hubs[1].gpu is True and hubs[2].packages == []


def test_json_registry_both_shapes(tmp_path):
    entry = {"name": "A", "url": "https://a.example.org", "packages": ["numpy==1.26.4"]}
    (tmp_path / "list.json").write_text(json.dumps([entry]))
    (tmp_path / "obj.json").write_text(json.dumps({"hubs": [entry]}))
    assert load_registry(tmp_path / "list.json") == load_registry(tmp_path / "obj.json")
    assert load_registry(tmp_path / "list.json")[0].packages == ["numpy==1.26.4"]


def test_esap_facilities_with_overlay_match_the_registry(tmp_path):
    registry = {h.name: h for h in load_registry(EXAMPLES / "hubs.toml")}
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(
        '["SURF/ASTRON JupyterHub"]\nsites = ["SURF-DCACHE", "LOFAR-LTA"]\nmemory_gb = 16\n'
        'packages = ["astropy==6.0.1"]\n'
    )
    hubs = load_esap_facilities(EXAMPLES / "esap_facilities.json", overlay)
    by_name = {h.name: h for h in hubs}
    assert set(by_name) == set(registry)
    surf = by_name["SURF/ASTRON JupyterHub"]
    assert surf.sites == registry[surf.name].sites and surf.url == registry[surf.name].url
    assert surf.packages == ["astropy==6.0.1"] and surf.memory_gb == 16.0
    # No overlay: ESAP's facilitytype alone decides the launch mode.
    assert by_name["ESCAPE BinderHub"].launch == "binderhub" and by_name["CERN SWAN"].sites == []
    # A plain list (not a DRF page) and a dict overlay work the same way.
    page = json.loads((EXAMPLES / "esap_facilities.json").read_text())
    plain = load_esap_facilities(page["results"], {"CERN SWAN": {"gpu": True}})
    assert {h.name: h.gpu for h in plain} == {
        "SURF/ASTRON JupyterHub": False,
        "CERN SWAN": True,
        "ESCAPE BinderHub": False,
    }


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"Nowhere Hub": {"gpu": True}}, "'Nowhere Hub', which the ESAP facility list does not have"),
        ({"CERN SWAN": {"url": "https://evil.example.org"}}, "'url'"),
        ({"CERN SWAN": {"gpu": "yes"}}, "hub 'CERN SWAN': 'gpu' must be true or false"),
    ],
)
def test_overlay_errors(overlay, message):
    page = json.loads((EXAMPLES / "esap_facilities.json").read_text())
    with pytest.raises(InvalidInput, match=message):
        load_esap_facilities(page, overlay)


H = '[[hubs]]\nname = "A"\nurl = "https://a"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (H + 'colour = "red"\n', "hub 'A': unknown field.*'colour'"),
        ('[[hubs]]\nname = "A"\nurl = "a.example.org"\n', "hub 'A': 'url' must be an http"),
        (H + 'launch = "voila"\n', "hub 'A': 'launch' must be one of"),
        (H + 'sites = "LOFAR-LTA"\n', "hub 'A': 'sites' must be a list"),
        (H + 'packages = ["numpy 1.26"]\n', "hub 'A': 'packages' entry"),
        (H + "memory_gb = -2\n", "hub 'A': 'memory_gb' must be a positive"),
        (H + "gpu = 1\n", "hub 'A': 'gpu' must be true or false"),
        ('[[hubs]]\nurl = "https://a"\n', "hub #1: 'name' must be a non-empty string"),
        (H + H.replace("https://a", "https://b"), "'A' appears twice"),
        ('title = "no hubs"\n', "must hold a 'hubs' list"),
        ("[[hubs]\nname=", "is not valid TOML"),
    ],
)
def test_registry_errors_name_hub_and_field(tmp_path, body, message):
    path = tmp_path / "hubs.toml"
    path.write_text(body)
    with pytest.raises(InvalidInput, match=message):
        load_registry(path)


def test_registry_file_errors(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read hub registry"):
        load_registry(tmp_path / "missing.toml")
    (tmp_path / "hubs.yaml").write_text("hubs: []")
    with pytest.raises(InvalidInput, match=r"must be a \.toml or \.json file"):
        load_registry(tmp_path / "hubs.yaml")


# ---------------------------------------------------------------- ranking


def test_locality_wins_over_package_fit():
    near = _hub("Near", sites=["LOFAR-LTA"], packages=["numpy"])
    far = _hub("Far", sites=["CERN-EOS"], packages=["numpy", "astropy==6.0.1"])
    manifest = _manifest([_file("big", "LOFAR-LTA", 920), _file("small", "CERN-EOS", 80)], requirements=["astropy>=6"])
    ranks = rank_hubs([far, near], manifest)
    assert [r.hub.name for r in ranks] == ["Near", "Far"]
    assert ranks[0].local_share == pytest.approx(0.92)
    assert "holds 92% of the referenced bytes at LOFAR-LTA" in ranks[0].reasons
    assert "lacks astropy>=6" in ranks[0].reasons
    assert "has astropy 6.0.1" in ranks[1].reasons
    assert ranks[0].score > ranks[1].score > 0


def test_hub_that_cannot_run_goes_last_with_reason():
    holder = _hub("Holder", sites=["SURF-DCACHE"], memory_gb=8)
    small = _hub("GpuSmall", sites=["SURF-DCACHE"], gpu=True, memory_gb=4)
    elsewhere = _hub("Elsewhere", gpu=True, memory_gb=64)
    manifest = _manifest([_file("a", "SURF-DCACHE", 10)], gpu=True, memory_gb=16)
    ranks = rank_hubs([holder, small, elsewhere], manifest)
    assert [r.hub.name for r in ranks] == ["Elsewhere", "GpuSmall", "Holder"]
    assert [r.can_run for r in ranks] == [True, False, False]
    assert ranks[-1].reasons[0] == "needs a GPU; this hub has none"
    assert "needs 16 GB of memory; this hub offers 4 GB" in ranks[1].reasons
    assert ranks[1].local_share == 1.0 and ranks[1].score == -1.0
    assert "has a GPU" in ranks[0].reasons


def test_unneeded_gpu_is_surplus_on_a_tie():
    plain = _hub("Plain", sites=["X"])
    gpu = _hub("Gpu", sites=["X"], gpu=True)
    ranks = rank_hubs([gpu, plain], _manifest([_file("a", "X", 1)]))
    assert [r.hub.name for r in ranks] == ["Plain", "Gpu"]
    ranks = rank_hubs([plain, gpu], _manifest([_file("a", "X", 1)], gpu=True))
    assert [r.hub.name for r in ranks] == ["Gpu", "Plain"] and not ranks[1].can_run


def test_versions_are_compared_when_the_hub_pins_one():
    old = _hub("Old", packages=["matplotlib==3.7.2", "Astropy==6.0.1"])
    new = _hub("New", packages=["matplotlib==3.8.3", "astropy"])
    ranks = rank_hubs([old, new], _manifest(requirements=["matplotlib>=3.8", "astropy>=6"]))
    assert [r.hub.name for r in ranks] == ["New", "Old"]
    assert "lacks matplotlib>=3.8 (has 3.7.2)" in ranks[1].reasons
    assert "has astropy 6.0.1" in ranks[1].reasons  # names compare canonically (Astropy == astropy)
    assert "has astropy" in ranks[0].reasons and "has matplotlib 3.8.3" in ranks[0].reasons
    assert all(r.can_run for r in ranks)


def test_unknown_capability_is_assumed_installable():
    full = _hub("Full", packages=["astropy==6.0.1", "numpy==1.26.4"])
    unknown = _hub("Unknown")
    binder = _hub("Binder", facilitytype="BinderHub", packages=["numpy==1.0"])
    bare = _hub("Bare", packages=["scipy"])
    ranks = rank_hubs([bare, unknown, full, binder], _manifest(requirements=["astropy>=6", "numpy"]))
    names = [r.hub.name for r in ranks]
    assert names[0] == "Full" and names[-1] == "Bare"
    assert set(names[1:3]) == {"Unknown", "Binder"}
    by = {r.hub.name: r for r in ranks}
    assert "lists no packages; assumed to install the requirements itself" in by["Unknown"].reasons
    assert "builds the environment from requirements.txt" in by["Binder"].reasons
    assert by["Full"].score > by["Unknown"].score == by["Binder"].score > by["Bare"].score
    assert all(r.can_run for r in ranks)


def test_hard_package_needs_block():
    lab = _hub("Lab", packages=["jupyterlab==4.1.0"])
    other = _hub("Other", packages=["notebook"])
    ranks = rank_hubs([lab, other], _manifest(packages=["jupyterlab>=4", "dask-gateway"]))
    assert [r.can_run for r in ranks] == [False, False]
    assert "lacks dask-gateway, which the payload needs from its hub" in ranks[0].reasons
    ranks = rank_hubs([other, lab], _manifest(packages=["jupyterlab>=4"]))
    assert [(r.hub.name, r.can_run) for r in ranks] == [("Lab", True), ("Other", False)]


def test_files_without_sizes_count_by_number_or_mean():
    hub = _hub("H", sites=["A"])
    by_count = rank_hubs([hub], _manifest([_file("1", "A"), _file("2", "A"), _file("3", "B")]))[0]
    assert by_count.local_share == pytest.approx(2 / 3)
    assert "holds 2 of 3 referenced files at A" in by_count.reasons
    mixed = rank_hubs([hub], _manifest([_file("1", "A", 300), _file("2", "B", 100), _file("3", "A")]))[0]
    assert mixed.local_share == pytest.approx(500 / 600)  # the unsized file weighs the mean, 200
    assert any(r.startswith("holds about 83% of the referenced data at A") for r in mixed.reasons)
    nowhere = rank_hubs([hub], _manifest([_file("1", None, 5)]))[0]
    assert nowhere.local_share == 0.0 and "holds none of the referenced data at its sites" in nowhere.reasons
    empty = rank_hubs([hub], _manifest())[0]
    assert empty.local_share == 0.0 and empty.can_run


def test_example_registry_ranking_and_json():
    hubs = load_registry(EXAMPLES / "hubs.toml")
    manifest = _manifest(
        [_file("ms", "LOFAR-LTA", 9_000_000), _file("cal", "CERN-EOS", 1_000_000)],
        requirements=["astropy>=6", "matplotlib>=3.8"],
        memory_gb=4,
    )
    ranks = rank_hubs(hubs, manifest)
    assert [r.hub.name for r in ranks] == ["SURF/ASTRON JupyterHub", "CERN SWAN", "ESCAPE BinderHub"]
    assert not ranks[-1].can_run
    doc = json.loads(json.dumps([r.to_json() for r in ranks]))
    assert doc[0]["hub"]["name"] == "SURF/ASTRON JupyterHub" and doc[0]["local_share"] == 0.9
    assert doc[2]["reasons"][0] == "needs 4 GB of memory; this hub offers 2 GB"
    assert set(doc[0]) == {"hub", "can_run", "local_share", "score", "reasons"}
