"""Top-k selection with a hold buffer: examples and properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow.errors import ConfigError
from stockflow.portfolio import select_topk

SYMS = [f"S{i:02d}" for i in range(30)]


def test_first_session_builds_the_whole_book() -> None:
    scores = {s: float(i) for i, s in enumerate(SYMS[:10])}
    sel = select_topk(scores, [], k=3, buffer=2, max_changes=1)
    assert sel.target == ("S09", "S08", "S07")
    assert sel.enter == sel.target and sel.exit == ()


def test_buffer_keeps_a_holding_until_it_falls_below_k_plus_buffer() -> None:
    scores = {s: float(i) for i, s in enumerate(SYMS[:10])}  # S09 best ... S00 worst
    inside = select_topk(scores, ["S05"], k=3, buffer=2)  # rank 5 <= 3 + 2
    assert "S05" in inside.keep and len(inside.target) == 3
    outside = select_topk(scores, ["S04"], k=3, buffer=2)  # rank 6 > 5
    assert outside.exit == ("S04",) and outside.target == ("S09", "S08", "S07")


def test_max_changes_bounds_replacements() -> None:
    scores = {s: float(i) for i, s in enumerate(SYMS[:10])}
    sel = select_topk(scores, ["S00", "S01", "S02"], k=3, max_changes=1)
    assert sel.exit == ("S00",) and sel.enter == ("S09",)


def test_unscored_holding_ranks_last() -> None:
    sel = select_topk({"A": 1.0, "B": 0.5}, ["GONE"], k=2)
    assert sel.exit == ("GONE",) and sel.target == ("A", "B")


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 2, "buffer": -1}, {"k": 2, "max_changes": -1}])
def test_bad_settings_are_named(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="portfolio\\."):
        select_topk({"A": 1.0}, [], **kwargs)


@given(
    scores=st.dictionaries(st.sampled_from(SYMS), st.floats(-1, 1, allow_nan=False), max_size=30),
    held=st.sets(st.sampled_from(SYMS), max_size=12),
    k=st.integers(1, 10),
    buffer=st.integers(0, 5),
    n=st.one_of(st.none(), st.integers(0, 5)),
)
def test_properties(scores: dict[str, float], held: set[str], k: int, buffer: int, n: int | None) -> None:
    sel = select_topk(scores, held, k=k, buffer=buffer, max_changes=n)
    target = set(sel.target)
    assert len(target) <= k  # never more than k holdings
    assert target == (held - set(sel.exit)) | set(sel.enter)
    assert not (set(sel.enter) & held) and set(sel.exit) <= held
    assert set(sel.enter) <= set(scores)  # only scored symbols are bought
    forced = max(len(held) - k, 0)
    if n is not None:  # replacements bounded: leavers beyond the forced ones, and their entries
        assert len(sel.exit) <= n + forced
        assert len(sel.enter) <= max(k - len(held), 0) + n
    if n is None:  # the book is full whenever enough symbols are scored; unscored holdings leave
        assert len(target) == min(k, len(scores))
    # a kept holding is within k + buffer, or could not leave because of the bound
    ranks = sel.ranks
    if n is None:
        assert all(ranks.get(s, 10**9) <= k + buffer for s in sel.keep)
