"""How a lazy read turns the blocks it needs into Range requests (runtime ``readplan.coalesce``), as pyarrow does."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.helpers import load_runtime_package, unload_runtime

KIB = 1 << 10


@pytest.fixture(scope="module")
def plan() -> Iterator[ModuleType]:
    rt = load_runtime_package("nbpack_runtime_ranges_unit")
    yield rt.readplan
    unload_runtime("nbpack_runtime_ranges_unit")


def test_adjacent_blocks_are_one_request_and_apart_ones_are_not(plan: ModuleType) -> None:
    # 256 KiB blocks: a hole of one block is far over pyarrow's 8 KiB, so it is not fetched to save a request.
    assert plan.coalesce([0, 1, 2, 4, 5, 9], 256 * KIB) == [(0, 2), (4, 5), (9, 9)]


def test_small_holes_are_merged_as_pyarrow_does(plan: ModuleType) -> None:
    # 4 KiB blocks: holes of one and two blocks (4, 8 KiB) are fetched with their neighbours; three (12 KiB) are not.
    assert plan.coalesce([0, 2, 5, 9], 4 * KIB) == [(0, 5), (9, 9)]


def test_a_hole_holding_a_cached_block_is_never_fetched_again(plan: ModuleType) -> None:
    assert plan.coalesce([0, 2, 5], 4 * KIB, {1}) == [(0, 0), (2, 5)]


def test_a_long_run_is_cut_at_the_range_limit_so_its_pieces_go_in_parallel(plan: ModuleType) -> None:
    per = plan.RANGE_LIMIT // (256 * KIB)
    runs = plan.coalesce(list(range(3 * per + 1)), 256 * KIB)
    assert runs == [(0, per - 1), (per, 2 * per - 1), (2 * per, 3 * per - 1), (3 * per, 3 * per)]
    assert max(last - first + 1 for first, last in runs) * 256 * KIB <= plan.RANGE_LIMIT


def test_nothing_needed_is_no_request(plan: ModuleType) -> None:
    assert plan.coalesce([], 256 * KIB) == []
