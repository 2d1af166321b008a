"""Signed range reads, in process: the runtime's rule for which signed URL it sends a request to, and the files
route's answer on a backend that cannot sign. SeaweedFS + gunicorn: tests/integration/test_signed_reads.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from tests.helpers import APP_API_KEY, load_runtime_package, make_app, unload_runtime
from tests.openapi_check import check_response
from tests.unit.test_files_endpoint import stars_table

FILES = "https://nbpack.example.org/files/TOKEN-abcdefghijklmnop/h-1/catalogs/x.parquet"
SIGNED = "https://s3.example.org/bucket/content/ab?X-Amz-Signature=0f&X-Amz-Expires=300"


@pytest.fixture(scope="module")
def signed() -> Iterator[ModuleType]:
    rt = load_runtime_package("nbpack_runtime_signed_unit")
    yield rt.signed
    unload_runtime("nbpack_runtime_signed_unit")


def test_an_https_url_is_accepted(signed: ModuleType) -> None:
    assert signed.accepted(SIGNED, FILES) == SIGNED


def test_plain_http_only_when_the_service_itself_is_plain_http(signed: ModuleType) -> None:
    plain = SIGNED.replace("https://", "http://")
    with pytest.raises(signed.RuntimeProblem, match="must be https"):
        signed.accepted(plain, FILES)
    assert signed.accepted(plain, FILES.replace("https://", "http://")) == plain


@pytest.mark.parametrize(
    "url",
    [
        "ftp://s3.example.org/bucket/key",
        "file:///etc/passwd",
        "https:///no-host",
        "https://user:pw@s3.example.org/bucket/key",
        "https://s3.example.org/bucket/key#frag",
        "https://s3.example.org/bucket/key?leak=TOKEN-abcdefghijklmnop",
        "",
        None,
        42,
    ],
)
def test_other_urls_are_refused(signed: ModuleType, url: object) -> None:
    with pytest.raises(signed.RuntimeProblem):
        signed.accepted(url, FILES)


def test_a_backend_that_cannot_sign_answers_409_and_the_member_still_reads(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Signed", catalogs=[CatalogInput("stars", stars_table(20_000))]), path)
    resp = client.post(
        "/api/v1/bundles", data=path.read_bytes(), content_type="application/zip", headers={"X-API-Key": APP_API_KEY}
    )
    doc = check_response(resp)
    member = doc["links"]["files"].removeprefix("http://localhost") + "catalogs/stars.parquet"
    refused = client.get(member + "?signed=1")
    body = check_response(refused)
    assert refused.status_code == 409 and body["error"] == "signed_read_unavailable", body
    assert refused.headers["Cache-Control"] == "private, no-store"
    assert client.get(member, headers={"Range": "bytes=0-3"}).data == b"PAR1"
    # A bad token is refused before anything is signed.
    bad = client.get(member.replace("/files/", "/files/x") + "?signed=1")
    assert bad.status_code == 403, bad.data
