"""Leakage guards on the real builder (must pass) and on planted leaks (must fail).

The planted leaks prove the checks can fail: each is the real builder plus one look-ahead column of a
kind that shows up in practice (the next bar, a statistic of the whole series, a rank over the week).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from stockflow.config.sections import FeatureSettings
from stockflow.features import MIN_HISTORY, build_features
from stockflow.features.leakage import (
    Violation,
    check_truncation_invariance,
    check_warmup_stability,
    min_stable_history,
    unmasked_features,
)
from stockflow.features.spec import STABILITY_ATOL


def real(bars: pl.DataFrame) -> pl.DataFrame:
    return build_features(bars, FeatureSettings())


def _with(extra: pl.Expr) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def builder(bars: pl.DataFrame) -> pl.DataFrame:
        out = build_features(bars, FeatureSettings())
        return out.join(
            bars.with_columns(extra.alias("leak")).select("symbol", "session", "leak"),
            on=["symbol", "session"],
        )

    return builder


#: Uses the next bar's close.
next_bar_leak = _with(pl.col("close").shift(-1).over("symbol") / pl.col("close") - 1)
#: Normalizes by the mean of the whole series (a scaler fit on all data).
whole_series_leak = _with(pl.col("close") / pl.col("close").mean().over("symbol"))
#: Ranks within the calendar week, i.e. against later sessions of the same week.
week_rank_leak = _with(pl.col("close").rank().over("symbol", pl.col("session").dt.truncate("1w")))


def _cuts(bars: pl.DataFrame, n: int, seed: int) -> list[int]:
    n_sessions = bars["session"].n_unique()
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(MIN_HISTORY // 2, n_sessions - 1), size=n, replace=False).tolist())


def _anchors(bars: pl.DataFrame) -> list[dt.date]:
    sessions = bars["session"].unique().sort().to_list()
    return [sessions[i] for i in (1400, 2600, len(sessions) - 1)]


def test_real_builder_is_truncation_invariant_including_ranks(panel: pl.DataFrame) -> None:
    # Fixed cuts around the warm-up boundary (symbols skipped, then usable) plus random ones.
    cuts = [150, MIN_HISTORY - 2, MIN_HISTORY - 1, *_cuts(panel, 6, seed=7)]
    violations = check_truncation_invariance(real, panel, cuts)
    assert violations == [], "\n".join(map(str, violations[:10]))


def test_real_builder_is_warmup_stable_from_min_history(panel: pl.DataFrame) -> None:
    lengths = [MIN_HISTORY, MIN_HISTORY + 37, 2 * MIN_HISTORY]
    violations = check_warmup_stability(real, panel, lengths, anchors=_anchors(panel))
    assert violations == [], "\n".join(map(str, violations[:10]))


def test_min_history_is_what_the_stability_check_measures(panel: pl.DataFrame) -> None:
    # Unmasked indicators: SMA(200) needs 200 bars; the recursive ones (EMA 26, Wilder 14) need a few
    # dozen more to agree within STABILITY_ATOL. MIN_HISTORY must cover that, with a margin.
    sessions = panel["session"].unique().sort().to_list()
    anchors = [sessions[i] for i in (1500, 2200, 2800, len(sessions) - 1)]
    derived = min_stable_history(
        unmasked_features, panel, range(200, 321, 10), anchors=anchors, atol=STABILITY_ATOL
    )
    # Measured: 230 bars on these anchors (200 at 1e-4, 260 at 1e-7).
    assert derived is not None
    assert 200 <= derived <= MIN_HISTORY
    # Below the SMA(200) lookback the last row is undefined: a shorter live history would be unusable.
    assert check_warmup_stability(unmasked_features, panel, [199])


def _columns(violations: list[Violation]) -> set[str]:
    return {v.column for v in violations}


@pytest.mark.parametrize("leaky", [next_bar_leak, whole_series_leak], ids=["next_bar", "whole_series"])
def test_planted_leak_fails_both_checks(
    panel: pl.DataFrame, leaky: Callable[[pl.DataFrame], pl.DataFrame]
) -> None:
    truncation = check_truncation_invariance(leaky, panel, _cuts(panel, 3, seed=11))
    stability = check_warmup_stability(leaky, panel, [MIN_HISTORY, 2 * MIN_HISTORY], anchors=_anchors(panel))
    # Only the planted column is flagged: the real features stay clean beside it.
    assert _columns(truncation) == {"leak"}
    assert _columns(stability) == {"leak"}


def test_planted_rank_over_later_sessions_fails_truncation(panel: pl.DataFrame) -> None:
    cuts = [c for c in _cuts(panel, 20, seed=5)][:8]
    assert _columns(check_truncation_invariance(week_rank_leak, panel, cuts)) == {"leak"}


def test_cut_points_accept_dates(aapl: pl.DataFrame) -> None:
    day = aapl["session"][1000]
    assert check_truncation_invariance(real, aapl, [day]) == []
    assert check_truncation_invariance(next_bar_leak, aapl, [day])[0].session == day
