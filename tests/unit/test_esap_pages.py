"""nbpack/bundle/esap_pages.py: ESAP query pages (IVOA rows or plain JSON rows) → one typed Arrow table."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.errors import InvalidTable
from tests.helpers import esap_page

BIG = 2**53 + 1  # the first integer a float64 cannot hold


def _ivoa(fields: list[dict], *results: str) -> list[dict]:
    return [{"fields": fields, "result": r} for r in results]


def test_ivoa_rows_are_typed_by_datatype_with_metadata_kept() -> None:
    table, provenance = table_from_esap_pages([esap_page()])
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("mag").type == pa.float32()
    assert table.schema.field("dist").type == pa.float64()
    assert table.schema.field("label").type == pa.string()
    assert table.column("label").to_pylist() == ["ab", None, "x, y"]  # the CSV-quoted comma is one value
    assert table.column("dist").to_pylist() == [100.25, None, 1000.0]
    assert table.schema.field("dist").metadata == {b"unit": b"pc", b"datatype": b"double"}
    assert provenance == {"service": "gaia.dr3", "query": "SELECT * FROM gaia"}


@pytest.mark.parametrize("text", [str(BIG), f"{BIG}.0", f"{BIG}e0", f"  {BIG} "])
def test_a_long_beyond_2_53_keeps_every_digit(text: str) -> None:
    # A long written as "9007199254740993.0" once went through float and came back as ...992: silently wrong data.
    table = table_from_esap_results(_ivoa([{"name": "id", "datatype": "long"}], text))
    assert table.column("id").to_pylist() == [BIG]


@pytest.mark.parametrize("text", ["1.5", "nan", "inf", "1e400", "1e999999999", "0x10", "one"])
def test_an_integer_field_refuses_what_is_not_an_integer(text: str) -> None:
    with pytest.raises(InvalidTable, match=r"row 0, field 'n'.* not a valid int"):
        table_from_esap_results(_ivoa([{"name": "n", "datatype": "int"}], text))


def test_an_integer_too_big_for_its_datatype_is_refused_not_wrapped() -> None:
    with pytest.raises(InvalidTable, match="does not fit its datatype 'short'"):
        table_from_esap_results(_ivoa([{"name": "n", "datatype": "short"}], "40000"))


def test_nan_in_a_float_field_stays_nan_beside_null() -> None:
    table = table_from_esap_results(_ivoa([{"name": "x", "datatype": "double"}], "nan", "", "null", "--", "-inf"))
    values = table.column("x").to_pylist()
    assert math.isnan(values[0]) and values[1:4] == [None, None, None] and values[4] == -math.inf
    assert table.column("x").null_count == 3


def test_booleans_read_votable_spellings_and_refuse_others() -> None:
    table = table_from_esap_results(_ivoa([{"name": "b", "datatype": "boolean"}], "T", "no", "?", "1"))
    assert table.column("b").to_pylist() == [True, False, None, True]
    with pytest.raises(InvalidTable, match="'maybe' is not a valid boolean"):
        table_from_esap_results(_ivoa([{"name": "b", "datatype": "boolean"}], "maybe"))


def test_char_values_keep_their_spaces_and_unicode() -> None:
    fields = [{"name": "a", "datatype": "unicodeChar"}, {"name": "b", "datatype": "char"}]
    table = table_from_esap_results(_ivoa(fields, '" é, ü ",x\x07y'))
    assert table.to_pylist() == [{"a": " é, ü ", "b": "x\x07y"}]


def test_an_unquoted_comma_is_refused_not_guessed() -> None:
    fields = [{"name": "a", "datatype": "char"}, {"name": "b", "datatype": "char"}]
    with pytest.raises(InvalidTable, match="splits into 3 values for 2 fields"):
        table_from_esap_results(_ivoa(fields, "x,y,z"))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "hold no rows"),
        ([1], "list of row objects"),
        (_ivoa([{"name": "a", "datatype": "quaternion"}], "1"), "unknown ESAP datatype 'quaternion'"),
        (_ivoa([{"datatype": "int"}], "1"), "field without a name"),
        ([{"fields": [], "result": ""}], "no usable 'fields'"),
        ([{"fields": [{"name": "a"}], "result": 5}], "'result' is not a string"),
        (
            [{"fields": [{"name": "a"}], "result": "1"}, {"fields": [{"name": "b"}], "result": "2"}],
            "row 1 has different fields",
        ),
    ],
)
def test_malformed_ivoa_rows_are_refused_by_row(rows: list, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        table_from_esap_results(rows)


def test_plain_rows_union_their_keys_in_first_seen_order() -> None:
    table = table_from_esap_results([{"b": 1, "a": "x"}, {"a": "y", "c": BIG}])
    assert table.column_names == ["b", "a", "c"]
    assert table.to_pylist() == [{"b": 1, "a": "x", "c": None}, {"b": None, "a": "y", "c": BIG}]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"n": 2**64}], "beyond 64 bits"),
        ([{"n": 1}, {"n": "one"}], "mixes value types"),
        ([{}], "hold no columns"),
    ],
)
def test_plain_rows_that_make_no_column_are_refused(rows: list, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        table_from_esap_results(rows)


def test_pages_join_and_provenance_comes_from_the_first_page_that_has_it() -> None:
    page1 = {"results": [{"n": 1, "dataset": "ds"}]}
    page2 = {"results": [{"n": 2, "dataset": "ds"}], "query": "q2", "service": "svc"}
    table, provenance = table_from_esap_pages([page1, page2])
    assert table.column("n").to_pylist() == [1, 2]
    assert provenance == {"service": "svc", "query": "q2"}
    _, from_rows = table_from_esap_pages([page1])
    assert from_rows == {"service": "ds"}  # no page names one: the first row's dataset


@pytest.mark.parametrize(
    ("pages", "message"), [([{"x": 1}], "page 1 has no 'results'"), ([{"results": []}], "no rows")]
)
def test_pages_without_rows_are_refused(pages: list, message: str) -> None:
    with pytest.raises(InvalidTable, match=message):
        table_from_esap_pages(pages)


# Beyond ±2^53 is where a float round trip loses digits; the plain spelling never went through float.
_PAST_FLOAT = st.integers(2**53 + 1, 2**63 - 1) | st.integers(-(2**63), -(2**53) - 1)


@given(n=_PAST_FLOAT, form=st.sampled_from(["{}.0", "{}.000", "{}e0", " {}.0 "]))
def test_every_int64_past_2_53_in_every_spelling_comes_back_exact(n: int, form: str) -> None:
    table = table_from_esap_results(_ivoa([{"name": "id", "datatype": "long"}], form.format(n)))
    assert table.column("id").to_pylist() == [n]
