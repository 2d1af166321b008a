"""ESAP shopping basket → bundle inputs, with items shaped like those esap-gui stores."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest

from nbpack.errors import InvalidInput
from nbpack.esap.basket import basket_items, basket_to_inputs

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "bundle-1.0.schema.json").read_text())
FILE_REF = jsonschema.Draft202012Validator({"$ref": "#/$defs/file_ref", "$defs": SCHEMA["$defs"]})

ALTA_WEBDAV = "https://webdav.grid.surfsara.nl:2880/pnfs/grid.sara.nl/data/apertif/disk/"


def stored(data: dict) -> dict:
    """A basket item as the accounts API returns it: item_data is JSON text."""
    return {"id": 7, "item_data": json.dumps(data)}


def apertif(name: str, subtype: str = "continuumMF") -> dict:
    # keys as esap-api-gateway's alta connector builds them (run_query)
    return {
        "archive": "apertif",
        "record": {
            "dataset": "apertif-imaging-processeddata",
            "collection": "imaging",
            "level": 2,
            "name": name,
            "PID": f"190809042_AP_B034_{name}",
            "dataProductType": "image",
            "dataProductSubType": subtype,
            "generatedByActivity": "190809042_AP_B034",
            "datasetID": "190809042",
            "ra": 342.16,
            "dec": 33.94,
            "fov": 1.0,
            "release": "APERTIF_DR1_Imaging",
            "thumbnail": "https://alta.astron.nl/alta-static/media/190809042_AP_B034/thumb.png",
            "storageRef": f"cold:190809042_AP_B034/{name}",
            "url": f"{ALTA_WEBDAV}APERTIF_DR1_Imaging/cold:190809042_AP_B034/{name}",
        },
    }


def rucio(name: str, **extra: object) -> dict:
    # keys as esap-api-gateway's rucio connector builds them, plus checksums/RSE a replica listing adds
    return {
        "archive": "rucio",
        "record": {
            "name": name,
            "parent": "LOFAR_ASTRON_GRANGE:L123456",
            "level": 0,
            "bytes": 1048576,
            "scope": "LOFAR_ASTRON_GRANGE",
            "type": "FILE",
            **extra,
        },
    }


OBSCORE_FIELDS = [
    {"name": "obs_id", "datatype": "char", "ucd": "meta.id", "description": "observation id"},
    {"name": "s_ra", "datatype": "double", "ucd": "pos.eq.ra;meta.main", "unit": "deg"},
    {"name": "s_dec", "datatype": "double", "ucd": "pos.eq.dec;meta.main", "unit": "deg"},
    {"name": "t_exptime", "datatype": "float", "unit": "s"},
    {"name": "calib_level", "datatype": "short"},
    {"name": "access_url", "datatype": "char", "ucd": "meta.ref.url"},
]


def ivoa(archive: str, obs: str, ra: str, level: str) -> dict:
    url = f"https://vo.astron.nl/getproduct/LoTSS-DR2/{obs}.fits"
    return {
        "archive": archive,
        "record": {
            "dataset": "ivoa.obscore",
            "query": "SELECT TOP 10 * FROM ivoa.obscore",
            "fields": OBSCORE_FIELDS,
            "result": f"{obs},{ra},54.1,1200.5,{level},{url}",
            "title": obs,
            "thumbnail": "",
            "url": url,
        },
    }


def test_archives_group_into_typed_catalogs_and_files() -> None:
    basket = [
        stored(apertif("image_mf_02.fits")),
        stored(apertif("HI_image_cube1.fits", "imageCube")),
        stored(
            rucio("L123456_SB000.MS.tar", adler32="0a1b2c3d", md5="0123456789ABCDEF0123456789abcdef", rse="SARA-DCACHE")
        ),
        stored(rucio("L123456_SB001.MS.tar", adler32="1b2c3d")),
        stored(ivoa("vo_reg", "P001+40", "10.25", "2")),
        stored(ivoa("vo_reg", "P002+41", "11.5", "3")),
        stored(
            {
                "archive": "astron_vo",
                "record": {"name": "LoTSS P003", "ra": 12.0, "dec": 40.0, "extra": {"beam": [5, 6]}},
            }
        ),
        stored({"archive": "zooniverse", "catalog": "project", "project_id": "10996", "category": "classifications"}),
        stored(
            {
                "archive": "zooniverse",
                "catalog": "workflow",
                "workflow_id": 1234,
                "project_id": "10996",
                "category": "subjects",
            }
        ),
    ]
    inputs = basket_to_inputs(basket)
    assert inputs.skipped == []
    assert set(inputs.catalogs) == {
        "apertif",
        "rucio",
        "vo_reg",
        "astron_vo",
        "zooniverse_project_10996_classifications",
        "zooniverse_workflow_1234_subjects",
    }
    assert inputs.origin["archives"] == {"apertif": 2, "astron_vo": 1, "rucio": 2, "vo_reg": 2, "zooniverse": 2}

    ap = inputs.catalogs["apertif"]
    assert ap.num_rows == 2 and ap.schema.field("ra").type == pa.float64()
    assert ap.schema.field("level").type == pa.int64()
    assert ap.column("dataProductSubType").to_pylist() == ["continuumMF", "imageCube"]

    vo = inputs.catalogs["vo_reg"]
    assert vo.num_rows == 2
    assert vo.schema.field("s_ra").type == pa.float64()
    assert vo.schema.field("calib_level").type == pa.int16()
    assert vo.column("s_ra").to_pylist() == [10.25, 11.5]
    assert vo.schema.field("s_ra").metadata[b"ucd"] == b"pos.eq.ra;meta.main"

    beam = inputs.catalogs["astron_vo"].column("extra").to_pylist()
    assert json.loads(beam[0]) == {"beam": [5, 6]}

    zoo = inputs.catalogs["zooniverse_workflow_1234_subjects"].to_pylist()
    assert zoo == [{"catalog": "workflow", "workflow_id": 1234, "project_id": "10996", "category": "subjects"}]

    by_uri = {f["uri"]: f for f in inputs.files}
    for ref in inputs.files:
        FILE_REF.validate(ref)
    assert len({f["name"] for f in inputs.files}) == len(inputs.files)
    did = by_uri["LOFAR_ASTRON_GRANGE:L123456_SB000.MS.tar"]
    assert did == {
        "name": "L123456_SB000.MS.tar",
        "uri": "LOFAR_ASTRON_GRANGE:L123456_SB000.MS.tar",
        "size": 1048576,
        "site": "SARA-DCACHE",
        "checksums": {"adler32": "0a1b2c3d", "md5": "0123456789abcdef0123456789abcdef"},
    }
    assert by_uri["LOFAR_ASTRON_GRANGE:L123456_SB001.MS.tar"]["checksums"] == {"adler32": "001b2c3d"}
    webdav = by_uri[f"{ALTA_WEBDAV}APERTIF_DR1_Imaging/cold:190809042_AP_B034/image_mf_02.fits"]
    assert webdav["name"] == "image_mf_02.fits" and webdav["media_type"] == "application/fits"
    # the ObsCore access_url and the record url are the same file: one reference
    assert "https://vo.astron.nl/getproduct/LoTSS-DR2/P001+40.fits" in by_uri
    assert not any("thumb" in u for u in by_uri)
    assert len(inputs.files) == 6


def test_user_profile_shapes_and_single_quoted_item_data() -> None:
    zoo = "{'archive': 'zooniverse', 'catalog': 'project', 'project_id': '42', 'category': 'subjects'}"
    page = {
        "count": 1,
        "next": None,
        "results": [{"user_name": "astro", "shopping_cart": [{"id": 1, "item_data": zoo}, stored(rucio("a.fits"))]}],
    }
    assert len(basket_items(page)) == 2
    assert len(basket_items(page["results"][0])) == 2
    inputs = basket_to_inputs(page)
    assert inputs.skipped == []
    assert set(inputs.catalogs) == {"zooniverse_project_42_subjects", "rucio"}
    # plain (already parsed) items and a lone item are accepted too
    assert set(basket_to_inputs(rucio("b.fits")).catalogs) == {"rucio"}
    with pytest.raises(InvalidInput):
        basket_to_inputs({"user_name": "astro"})
    with pytest.raises(InvalidInput):
        basket_to_inputs("not a basket")  # type: ignore[arg-type]


def test_garbled_items_are_skipped_with_reasons() -> None:
    bad = [
        "just a string",
        {"id": 3, "item_data": "{broken json"},
        stored({"record": {"name": "x"}}),
        stored({"archive": "apertif"}),
        stored({"archive": "zooniverse", "catalog": "galaxy", "project_id": "1", "category": "subjects"}),
        stored({"archive": "zooniverse", "catalog": "project", "category": "subjects"}),
        stored({"archive": "rucio", "record": {"bytes": 10}}),
        stored(rucio("c.fits", md5="not-hex")),
        stored({"archive": "vo_reg", "record": {"fields": [{"name": "a", "datatype": "int"}], "result": "twelve"}}),
    ]
    good = stored(apertif("image_mf_02.fits"))
    inputs = basket_to_inputs([*bad, good])
    assert [s["item"] for s in inputs.skipped] == bad
    reasons = [s["reason"] for s in inputs.skipped]
    assert "not a JSON object" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert "archive" in reasons[2]
    assert "record" in reasons[3]
    assert "'project' or 'workflow'" in reasons[4]
    assert "project_id" in reasons[5]
    assert "scope" in reasons[6]
    assert "md5" in reasons[7]
    assert "twelve" in reasons[8] or "int" in reasons[8]
    # skipped items leave nothing behind: only the good apertif row and its file remain
    assert set(inputs.catalogs) == {"apertif"}
    assert [f["name"] for f in inputs.files] == ["image_mf_02.fits"]
    assert inputs.origin["archives"] == {"apertif": 1}


def test_query_page_records_use_the_catalog_page_reader() -> None:
    page = {
        "description": "ASTRON VO",
        "version": "1",
        "requested_page": 1,
        "requested_page_size": 50,
        "count": 2,
        "pages": 1,
        "query": "https://vo.astron.nl/tap?QUERY=...",
        "results": [
            {"name": "obs a", "ra": 1.5, "url": "https://vo.astron.nl/getproduct/run1/L1_SB000.MS.tar"},
            {"name": "obs a", "ra": 2.5, "url": "https://vo.astron.nl/getproduct/run2/L1_SB000.MS.tar"},
        ],
    }
    inputs = basket_to_inputs([stored({"archive": "astron_vo", "record": page})])
    assert inputs.skipped == []
    table = inputs.catalogs["astron_vo"]
    assert table.num_rows == 2 and table.schema.field("ra").type == pa.float64()
    # files keep their own names (not the target's); two named alike get distinct names, the double extension kept
    assert sorted(f["name"] for f in inputs.files) == ["L1_SB000-2.MS.tar", "L1_SB000.MS.tar"]
    assert inputs.origin["queries"][0]["query"].startswith("https://vo.astron.nl/tap")


def test_generic_archive_and_mixed_types() -> None:
    items = [
        {"archive": "samp", "record": {"RA": 10.5, "ID": 1, "access_url": "s3://lake/run1/x.h5"}},
        {"archive": "samp", "record": {"RA": "11.0", "ID": 2, "flag": True}},
        {"archive": "zenodo", "record": {"doi": "10.5281/zenodo.1", "url": "ftp://old.example.org/x"}},
    ]
    inputs = basket_to_inputs(items)
    samp = inputs.catalogs["samp"]
    assert samp.schema.field("ID").type == pa.int64()
    assert samp.column("RA").to_pylist() == ["10.5", "11.0"]  # mixed types kept, as text
    assert samp.column("flag").to_pylist() == [None, True]
    assert "zenodo" in inputs.catalogs
    assert [f["uri"] for f in inputs.files] == ["s3://lake/run1/x.h5"]  # ftp is not a data-lake scheme
    assert inputs.files[0]["media_type"] == "application/x-hdf5"


# ------------------------------------------------------------------ every item kind as the real gateway stores it


def real_basket() -> list[dict]:
    """One item of each kind esap-gui's results pages put in the basket, as ESAP's accounts API returns them."""
    lotss = "https://vo.astron.nl/getproduct/LoTSS-DR2/P003+41-mosaic.fits"
    return [
        # IVOAResults.js: createBasketItem(result.result.split(",")): a bare array of strings
        stored({"archive": "vo_reg", "record": ["P001+40", "10.25", "54.1", "2", lotss, "Ångström, 5"]}),
        # SampGrid.js: a votable.js row (typed values, no names)
        stored({"archive": "samp", "record": [1, 10.5, None, "https://example.org/run/x.MS", 9007199254740993]}),
        # ASTRONVOResults.js: the connector's record, no "fields"; "name" is the target, not the file
        stored(
            {
                "archive": "astron_vo",
                "record": {
                    "dataset": "ivoa://astron/lotss",
                    "dataset_name": "LoTSS-DR2",
                    "result": f"P003+41,12.0,40.0,{lotss}",
                    "query": "https://vo.astron.nl/tap/sync?QUERY=SELECT+*",
                    "title": "P003+41",
                    "thumbnail": "https://vo.astron.nl/thumb/P003+41.png",
                    "url": "https://vo.astron.nl/getproduct?ID=ivo://astron/lotss/P003%2B41-mosaic.fits",
                    "name": "P003+41",
                    "ra": 12.0,
                    "dec": 40.0,
                },
            }
        ),
        stored(apertif("image_mf_02.fits")),
        # RucioResults.js: a raw GET /dids/{scope}/ row: no checksums, no RSE
        stored(rucio("L123456_SB000.MS")),
        stored({"archive": "zooniverse", "catalog": "project", "project_id": "10996", "category": "subjects"}),
        # RunMultiQueryResults.js: any row
        stored({"archive": "multi_query", "record": {"name": "M31", "url": "https://example.org/d/m31_r.fits"}}),
    ]


def test_every_item_kind_real_esap_stores_lands_in_the_bundle() -> None:
    inputs = basket_to_inputs(real_basket())
    assert inputs.skipped == []
    report = inputs.items
    assert [r["item"] for r in report] == list(range(7)) and not any("skipped" in r for r in report)
    assert {r["archive"]: r["catalog"] for r in report} == {
        "vo_reg": "vo_reg",
        "samp": "samp",
        "astron_vo": "astron_vo",
        "apertif": "apertif",
        "rucio": "rucio",
        "zooniverse": "zooniverse_project_10996_subjects",
        "multi_query": "multi_query",
    }
    # rows without names: text columns named by position, every value kept (int64 > 2^53 exactly, null as null)
    vo = inputs.catalogs["vo_reg"]
    assert vo.column_names == [f"col_{i}" for i in range(1, 7)] and vo.column("col_6").to_pylist() == ["Ångström, 5"]
    samp = inputs.catalogs["samp"].to_pylist()[0]
    assert samp["col_5"] == "9007199254740993" and samp["col_3"] is None
    by_item = {r["archive"]: r.get("files", []) for r in report}
    by_name = {f["name"]: f for f in inputs.files}
    # files keep their own names and extensions, never the target's
    assert by_item["vo_reg"] == ["P003_41-mosaic.fits"]
    # the name a getproduct?ID=… URL gives in its query; another URL's file of that name keeps its own as "-2"
    assert by_item["astron_vo"] == ["P003_41-mosaic-2.fits"]
    assert by_name["x.MS"]["media_type"] == "inode/directory" and by_item["samp"] == ["x.MS"]
    assert by_item["multi_query"] == ["m31_r.fits"] and by_name["m31_r.fits"]["media_type"] == "application/fits"
    # a Rucio DID without checksums is kept: the kernel checks it against Rucio's own metadata
    assert by_name["L123456_SB000.MS"]["uri"] == "LOFAR_ASTRON_GRANGE:L123456_SB000.MS"
    assert "checksums" not in by_name["L123456_SB000.MS"]
    assert not any("thumb" in f["uri"] or "tap/sync" in f["uri"] for f in inputs.files)
    for ref in inputs.files:
        FILE_REF.validate(ref)


def test_a_basket_of_which_nothing_can_be_used_is_refused_with_reasons() -> None:
    with pytest.raises(InvalidInput) as caught:
        basket_to_inputs([{"id": 1, "item_data": "{broken"}, stored({"archive": "apertif"})])
    err = caught.value
    assert err.http_status == 422 and err.code == "basket_unusable"
    assert (
        "item 0: item_data is not valid JSON" in err.message and "item 1: apertif item has no 'record'" in err.message
    )
    with pytest.raises(InvalidInput) as caught:
        basket_to_inputs([])
    assert caught.value.http_status == 422 and "no items" in caught.value.message
